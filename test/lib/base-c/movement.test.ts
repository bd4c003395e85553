import { describe, expect, it } from "vitest";
import { isMovementRecord, MAX_REPORTED_ERRORS, splitBody, toRecords, validateMovements } from "../../../lib/base-c/movement";

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

describe("toRecords", () => {
	const subjectOf = (cpf: string) => `subject-of-${cpf.slice(0, 3)}`;
	const pix = { cpf: "52998224725", tipo: "pix", valor: 5, data: "2025-02-01" };

	it("carries the pseudonym, not the CPF, and money as whole cents", () => {
		const [record] = toRecords([{ ...pix, valor: 1234.56 }], subjectOf);
		expect(record).toEqual({ movement_id: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/), subject: "subject-of-529", tipo: "pix", valor_cents: 123456, data: "2025-02-01" });
		expect(JSON.stringify(record)).not.toContain("52998224725");
	});

	it("gives the same batch sent twice the same ids, and two identical movements of one batch two", () => {
		const batch = [pix, { ...pix }, { ...pix, tipo: "ted" }];
		const first = toRecords(batch, subjectOf).map(r => r.movement_id);
		expect(toRecords(batch, subjectOf).map(r => r.movement_id)).toEqual(first);
		expect(new Set(first).size).toBe(3);
		// Alone, the first of the two identical movements is the same record as in the batch.
		expect(toRecords([pix], subjectOf)[0].movement_id).toBe(first[0]);
	});

	it("takes a client id as the identity: the same id is one movement whatever it says, per person", () => {
		const [a] = toRecords([{ ...pix, id: "abc-1" }], subjectOf);
		const [b] = toRecords([{ ...pix, valor: 7, tipo: "ted", id: "abc-1" }], subjectOf);
		const [c] = toRecords([{ ...pix, cpf: "11144477735", id: "abc-1" }], subjectOf);
		expect(b.movement_id).toBe(a.movement_id);
		expect(c.movement_id).not.toBe(a.movement_id);
		expect(toRecords([pix], subjectOf)[0].movement_id).not.toBe(a.movement_id);
	});
});

describe("isMovementRecord", () => {
	const subject = "A".repeat(43);
	const record = { movement_id: "m1", subject, tipo: "pix", valor_cents: 100, data: "2025-01-01" };

	it("takes a pseudonymised record of exactly its five fields", () => {
		expect(isMovementRecord(record)).toBe(true);
	});

	it("refuses a record that carries a CPF, as a field or as its subject, or lacks a field (base-c never writes it)", () => {
		for (const bad of [
			{ ...record, cpf: "52998224725" }, { ...record, subject: "52998224725" }, { ...record, subject: "529.982.247-25" },
			{ movement_id: "m1", subject, tipo: "pix", valor_cents: 100 }, null, "text", []
		]) expect(isMovementRecord(bad), JSON.stringify(bad)).toBe(false);
	});
});
