import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { MARK_TTL_MS, createdByMark, expiredMarks, markOf, markPath } from "../../../lib/base-b/write-marks";

describe("write marks", () => {
	it("name a consumer's key by a digest: stable, distinct per consumer and key, never the key itself", () => {
		expect(markOf("c1", "key-1")).toBe(markOf("c1", "key-1"));
		expect(markOf("c1", "key-1")).not.toBe(markOf("c2", "key-1"));
		expect(markOf("c1", "key-1")).not.toBe(markOf("c1", "key-2"));
		// The separator keeps ("ab", "c") and ("a", "bc") apart.
		expect(markOf("ab", "c")).not.toBe(markOf("a", "bc"));
		fc.assert(fc.property(fc.string(), fc.string(), (consumer, key) => {
			const mark = markOf(consumer, key);
			expect(mark).toMatch(/^k[0-9a-f]{32}$/);
			expect(markPath(mark)).toBe(`writes.${mark}`);
		}));
	});

	it("expire after MARK_TTL_MS, and only then", () => {
		const now = new Date("2026-01-02T00:00:00Z");
		const fresh = new Date(now.getTime() - MARK_TTL_MS);
		const old = new Date(now.getTime() - MARK_TTL_MS - 1);
		expect(expiredMarks({ ka: fresh, kb: old }, now)).toEqual({ "writes.kb": "" });
		expect(expiredMarks(undefined, now)).toEqual({});
	});

	it("tell a write that created its profile (createdAt is the mark's moment) from a replacement", () => {
		const at = new Date("2026-01-01T10:00:00Z");
		expect(createdByMark({ createdAt: at, writes: { k1: new Date(at) } }, "k1")).toBe(true);
		expect(createdByMark({ createdAt: new Date(at.getTime() - 1), writes: { k1: at } }, "k1")).toBe(false);
		expect(createdByMark({ createdAt: at, writes: {} }, "k1")).toBe(false);
	});
});
