import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { BATCH_CHUNK, BATCH_MAX_CPFS, chunks, parseBatch } from "../../lib/batch";
import { formatCpf, randomCpf } from "../../lib/cpf";

describe("parseBatch", () => {
	it("reads a JSON array and NDJSON alike, in input order, an item that is not a CPF kept as null with what was sent", () => {
		const a = randomCpf();
		const b = randomCpf();
		const fromArray = parseBatch([a, { cpf: formatCpf(b) }, "123.456", 42, { cpf: {} }]);
		expect(fromArray).toEqual({ cpfs: [a, b, null, null, null], given: [a, formatCpf(b), "123.456", null, null], tooMany: false });
		const fromText = parseBatch(`${a}\n\n"${formatCpf(b)}"\n{"cpf":"${b}"}\nnot json {\n`);
		expect(fromText.cpfs).toEqual([a, b, b, null]);
		expect(fromText.given.at(-1)).toBe("not json {");
	});

	it("cuts what an invalid item echoes to 20 characters", () => {
		expect(parseBatch(["x".repeat(100)]).given).toEqual(["x".repeat(20)]);
	});

	it("stops at the item past the maximum, for an array and for NDJSON", () => {
		expect(parseBatch(Array.from({ length: BATCH_MAX_CPFS + 1 }, () => "1")).tooMany).toBe(true);
		expect(parseBatch(Array.from({ length: BATCH_MAX_CPFS }, () => "1")).tooMany).toBe(false);
		expect(parseBatch("1\n1\n1\n", 2)).toMatchObject({ tooMany: true });
		expect(parseBatch("1\n1\n\n", 2)).toMatchObject({ tooMany: false });
	});

	it("takes nothing from a body that is neither an array nor text", () => {
		for (const body of [null, undefined, 7, { cpf: randomCpf() }]) expect(parseBatch(body)).toEqual({ cpfs: [], given: [], tooMany: false });
	});
});

describe("chunks", () => {
	it("cuts any list into consecutive pieces of at most the chunk size that put it back together in order", () => {
		fc.assert(fc.property(fc.array(fc.integer(), { maxLength: 3 * BATCH_CHUNK }), fc.integer({ min: 1, max: 700 }), (items, size) => {
			const pieces = [...chunks(items, size)];
			expect(pieces.flatMap(p => p.items)).toEqual(items);
			pieces.forEach((p, k) => {
				expect(p.start).toBe(k * size);
				expect(p.items.length).toBeLessThanOrEqual(size);
				expect(p.items.length).toBeGreaterThan(0);
			});
		}), { numRuns: 200 });
	});
});
