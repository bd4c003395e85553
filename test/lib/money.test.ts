import { describe, expect, it } from "vitest";
import { MAX_CENTS, fromCents, toCents } from "../../lib/money";

describe("money", () => {
	it.each([[0, 0], [0.1, 10], [0.07, 7], [10.5, 1050], [1234.56, 123456], [19.99, 1999], [0.29, 29]])(
		"%s → %s cents", (value, cents) => expect(toCents(value)).toBe(cents));

	// 2.5890419884777833e-42 was accepted as 0 cents until schemathesis sent it (multipleOf 0.01 says no).
	it.each([-0.01, -1, 1.234, 0.001, 2.5890419884777833e-42, 1e-7, 0.0000001, NaN, Infinity, "10.50", null, (MAX_CENTS + 1) / 100, 1e21])(
		"rejects %s", value => expect(toCents(value)).toBeNull());

	it("sums exactly in cents where floats drift", () => {
		const cents = Array.from({ length: 10 }, () => toCents(0.1)!).reduce((a, b) => a + b, 0);
		expect(fromCents(cents)).toBe(1);
		expect(fromCents("123456")).toBe(1234.56);
	});
});
