import { describe, expect, it } from "vitest";
import { scrubText, scrubValue } from "../../lib/scrub";

describe("scrub", () => {
	it("masks CPFs in any spelling, but not longer numbers", () => {
		expect(scrubText("GET /api/v1/persons/52998224725")).not.toContain("52998224725");
		expect(scrubText("cpf 529.982.247-25 here")).not.toContain("529.982.247-25");
		expect(scrubText("ts 1732521600000 id 123456789012")).toBe("ts 1732521600000 id 123456789012");
	});
	it("redacts personal fields deep inside objects and errors", () => {
		const out = scrubValue({ params: { cpf: "x", nome: "Ana", endereco: "Rua", valor: 1 }, list: ["52998224725"] }) as any;
		expect(out.params).toEqual({ cpf: "[redacted]", nome: "[redacted]", endereco: "[redacted]", valor: 1 });
		expect(out.list[0]).toBe("[redacted]");
		const err = scrubValue(Object.assign(new Error("bad 52998224725"), { data: { nome: "Ana" } })) as any;
		expect(err.message).not.toContain("52998224725");
		expect(err.data.nome).toBe("[redacted]");
	});
});
