import { describe, expect, it } from "vitest";
import { formatCpf, normalizeCpf, randomCpf, withCheckDigits } from "../../lib/cpf";

describe("normalizeCpf", () => {
	it.each([
		["52998224725", "52998224725"],
		["529.982.247-25", "52998224725"],
		["111.444.777-35", "11144477735"]
	])("accepts %s", (input, digits) => expect(normalizeCpf(input)).toBe(digits));

	it.each([
		"52998224726", "529.982.247-26", "111.111.111-11", "00000000000", "99999999999",
		"5299822472", "529982247250", "529 982 247 25", "529.982.24725", "abc", "", "52998224725 ", "' OR 1=1 --"
	])("rejects %j", input => expect(normalizeCpf(input)).toBeNull());

	it("rejects non-strings", () => {
		for (const v of [52998224725, null, undefined, {}, ["52998224725"]]) expect(normalizeCpf(v)).toBeNull();
	});

	it("completes nine digits with their check digits", () => {
		expect(withCheckDigits("529982247")).toBe("52998224725");
		expect(withCheckDigits("111444777")).toBe("11144477735");
	});

	it("makes valid random CPFs", () => {
		for (let i = 0; i < 500; i++) {
			const cpf = randomCpf();
			expect(normalizeCpf(cpf)).toBe(cpf);
			expect(normalizeCpf(formatCpf(cpf))).toBe(cpf);
		}
	});
});
