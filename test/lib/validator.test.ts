import { describe, expect, it } from "vitest";
import { createValidator, customRules, messages, VALIDATOR_OPTIONS } from "../../lib/validator";

const compile = (schema: object) => (createValidator() as any).compile(schema) as (params: Record<string, unknown>) => true | { type: string; field: string; message: string; actual?: unknown }[];

describe("custom rules", () => {
	it("replace the input with its parsed value: CPF digits, ISO date; money stays the number sent", () => {
		const check = compile({ cpf: { type: "cpf" }, data: { type: "date" }, valor: { type: "money" } });
		const params = { cpf: "529.982.247-25", data: "15/03/2024", valor: 1500.1 };
		expect(check(params)).toBe(true);
		expect(params).toEqual({ cpf: "52998224725", data: "2024-03-15", valor: 1500.1 });
	});

	it("refuse with their own message, which names the field and never the value", () => {
		const check = compile({ cpf: { type: "cpf" }, data: { type: "date" }, valor: { type: "money" } });
		const errors = check({ cpf: "111.111.111-11", data: "2024-02-30", valor: -5 });
		expect(errors).not.toBe(true);
		const list = errors as Exclude<typeof errors, true>;
		expect(list.map(e => [e.field, e.type])).toEqual([["cpf", "cpf"], ["data", "date"], ["valor", "money"]]);
		for (const e of list) {
			expect(e.message).toContain(`'${e.field}'`);
			expect(e).not.toHaveProperty("actual");
		}
		expect(JSON.stringify(list)).not.toMatch(/111\.111|2024-02-30|-5/);
	});

	it("refuse what is not a string or a number of the right kind", () => {
		const check = compile({ cpf: { type: "cpf" }, data: { type: "date" }, valor: { type: "money" } });
		const errors = check({ cpf: 52998224725, data: 20240315, valor: "10.00" }) as { type: string }[];
		expect(errors.map(e => e.type)).toEqual(["cpf", "date", "money"]);
	});

	it("are the three the project declares, each with a message", () => {
		expect(Object.keys(customRules).sort()).toEqual(["cpf", "date", "money"]);
		for (const rule of Object.keys(customRules)) expect(messages[rule as keyof typeof messages]).toMatch(/\{field\}/);
	});
});

describe("options", () => {
	it("report every bad field, not only the first", () => {
		const errors = compile({ a: { type: "cpf" }, b: { type: "cpf" }, c: { type: "cpf" } })({ a: "x", b: "y", c: "z" });
		expect(errors).toHaveLength(3);
		expect(VALIDATOR_OPTIONS.haltOnFirstError).toBe(false);
	});

	it("refuse null for an optional field unless the rule says nullable", () => {
		const check = compile({ a: { type: "string", optional: true }, d: { type: "date", optional: true }, n: { type: "string", optional: true, nullable: true } });
		expect(check({})).toBe(true);
		expect(check({ n: null })).toBe(true);
		expect((check({ a: null }) as { field: string }[]).map(e => e.field)).toEqual(["a"]);
		expect((check({ d: null }) as { field: string }[]).map(e => e.field)).toEqual(["d"]);
	});
});
