import { describe, expect, it } from "vitest";
import { MAX_REPORTED_ERRORS, splitBody, validateMovements } from "../../../lib/base-c/movement";

describe("splitBody", () => {
	it("stops reading NDJSON at the hundredth bad line: a body of a million is never held whole", () => {
		const { items, errors, tooMany } = splitBody("x\n".repeat(1_000_000), 10_000);
		expect(errors).toHaveLength(MAX_REPORTED_ERRORS);
		expect(items).toHaveLength(MAX_REPORTED_ERRORS);
		expect(errors.at(-1)).toMatchObject({ index: 99, type: "json" });
		expect(tooMany).toBe(false);
	});

	it("stops at the movement past the cap, and counts lines by their place in the body", () => {
		const over = splitBody(Array.from({ length: 10_001 }, () => "{}").join("\n"), 10_000);
		expect(over.tooMany).toBe(true);
		expect(over.items).toHaveLength(10_000);
		expect(splitBody(["{}", "", "{oops", "{}"].join("\n"), 10).errors).toEqual([{ index: 2, type: "json", message: "Line 3 is not valid JSON." }]);
		expect(splitBody(new Array(11).fill({}), 10).tooMany).toBe(true);
	});
});

describe("validateMovements", () => {
	it("names at most a hundred bad items", () => {
		expect(validateMovements(new Array(5000).fill({ tipo: "x" })).errors.length).toBeLessThanOrEqual(MAX_REPORTED_ERRORS + 10);
	});
});
