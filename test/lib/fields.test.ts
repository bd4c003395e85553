import { describe, expect, it } from "vitest";
import * as fields from "../../lib/fields";
import { createValidator } from "../../lib/validator";

// The shared parameter rules, compiled by the project's validator as an action's params are.
const check = (rule: object, value: unknown) => {
	const params: Record<string, unknown> = { value };
	const result = (createValidator() as any).compile({ value: rule })(params);
	return { ok: result === true, errors: result === true ? [] : result as { type: string; field: string; message: string }[], value: params.value };
};

describe("nome", () => {
	it.each(["Fulano de Tal", "José D'Ávila", "Ana-Maria Sá", "J. R. Tolkien", "Jose\u0301 Decomposto", "Nguyễn Văn An", "Дмитрий"])("accepts %j", nome => {
		expect(check(fields.nome, nome).ok).toBe(true);
	});

	it.each([
		["SQL", "Robert'); DROP TABLE persons;--"], ["markup", "<script>alert(1)</script>"], ["a digit", "Ana 2"], ["an equals sign", "a=b"],
		["a double quote", 'Ana "Bia"'], ["a leading apostrophe", "'Ana"], ["a combining overlay outside U+0300–U+036F", "J\u20DD"]
	])("refuses %s with its pattern message, which never echoes the value", (_what, nome) => {
		const { ok, errors } = check(fields.nome, nome);
		expect(ok).toBe(false);
		expect(errors.map(e => e.type)).toContain("stringPattern");
		for (const e of errors) expect(e.message).not.toContain(nome);
	});

	it("trims before it measures: 2 to 120 letters", () => {
		expect(check(fields.nome, "  Ana Lima  ").value).toBe("Ana Lima");
		expect(check(fields.nome, " A ").errors.map(e => e.type)).toEqual(["stringMin"]);
		expect(check(fields.nome, "A".repeat(120)).ok).toBe(true);
		expect(check(fields.nome, "A".repeat(121)).errors.map(e => e.type)).toEqual(["stringMax"]);
	});
});

describe("endereco and empresa", () => {
	it("accept the punctuation addresses and company names use", () => {
		for (const endereco of ["Rua XXXX, 123 - Centro", "Av. Brasil, 1000", "Rua 7, nº 12 (fundos) #3", "Travessa D'Ajuda, 5º andar, 2ª sala, 30° S / bloco B"]) {
			expect(check(fields.endereco, endereco).ok, endereco).toBe(true);
		}
		for (const empresa of ["Banco X", "Loja & Cia.", "C&A", "D'Or / Saúde", "Operadora-Z 2"]) expect(check(fields.empresa, empresa).ok, empresa).toBe(true);
	});

	it("refuse what a query or a page could be made of", () => {
		for (const endereco of ["' OR '1'='1", "Rua A; DROP", "Rua <b>", 'Rua "A"', "ab"]) expect(check(fields.endereco, endereco).ok, endereco).toBe(false);
		for (const empresa of ["x'; DELETE FROM debts; --", "a=b", "<i>", "", "A".repeat(121)]) expect(check(fields.empresa, empresa).ok, empresa).toBe(false);
	});
});

describe("typed rules", () => {
	it("cpf, date and money parse what they accept and refuse the rest", () => {
		expect(check(fields.cpf, "529.982.247-25")).toMatchObject({ ok: true, value: "52998224725" });
		expect(check(fields.cpf, "52998224726").errors.map(e => e.type)).toEqual(["cpf"]);
		expect(check(fields.date, "15/03/2024")).toMatchObject({ ok: true, value: "2024-03-15" });
		expect(check(fields.date, "31/02/2024").ok).toBe(false);
		expect(check(fields.money, 10.5)).toMatchObject({ ok: true, value: 10.5 });
		expect(check(fields.money, 10.001).ok).toBe(false);
		expect(check(fields.uuid, "6f1c1f8e-4a53-4c1e-9a4e-0d1b2a3c4d5e").ok).toBe(true);
		expect(check(fields.uuid, "1 OR 1=1").ok).toBe(false);
	});

	it("optional dates may be absent, never null; the payment date alias stays out of the document", () => {
		const schema = (createValidator() as any).compile({ $$strict: true, datePagamento: fields.optionalDate, dataPagamento: fields.paymentDateAlias });
		expect(schema({})).toBe(true);
		expect(schema({ datePagamento: null })).not.toBe(true);
		const params = { dataPagamento: "01/06/2023" };
		expect(schema(params)).toBe(true);
		expect(params.dataPagamento).toBe("2023-06-01");
		expect(fields.paymentDateAlias).toMatchObject({ type: "date", optional: true, openapi: false });
		expect(fields.optionalDate).not.toHaveProperty("openapi");
	});
});
