import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { PiiCipher, blindIndexer, pseudonymizer } from "../../lib/pii";

const k1 = { id: "k1", key: randomBytes(32) };
const k2 = { id: "k2", key: randomBytes(32) };
const blind = randomBytes(32);

describe("PiiCipher", () => {
	it("round-trips and never repeats a ciphertext", () => {
		const c = new PiiCipher([k1], blind);
		const a = c.encrypt("Fulano de Tal", "persons.nome:x");
		expect(a).toMatch(/^v1\.k1\./);
		expect(a).not.toContain("Fulano");
		expect(c.encrypt("Fulano de Tal", "persons.nome:x")).not.toBe(a);
		expect(c.decrypt(a, "persons.nome:x")).toBe("Fulano de Tal");
	});

	it("refuses a ciphertext moved to another field or owner, or tampered with", () => {
		const c = new PiiCipher([k1], blind);
		const a = c.encrypt("Rua A", "persons.endereco:owner1");
		expect(() => c.decrypt(a, "persons.endereco:owner2")).toThrow();
		expect(() => c.decrypt(a, "persons.nome:owner1")).toThrow();
		const tampered = a.slice(0, -2) + (a.endsWith("A") ? "BB" : "AA");
		expect(() => c.decrypt(tampered, "persons.endereco:owner1")).toThrow();
	});

	it("reads old rows after a key rotation and writes with the new key", () => {
		const before = new PiiCipher([k1], blind);
		const old = before.encrypt("52998224725", "persons.cpf:b");
		const after = new PiiCipher([k2, k1], blind);
		expect(after.decrypt(old, "persons.cpf:b")).toBe("52998224725");
		expect(after.isStale(old)).toBe(true);
		expect(after.encrypt("x", "a")).toMatch(/^v1\.k2\./);
		expect(() => new PiiCipher([k2], blind).decrypt(old, "persons.cpf:b")).toThrow(/unknown key id/);
	});

	it("blind index is deterministic, keyed, and not the CPF", () => {
		const c = new PiiCipher([k1], blind);
		expect(c.blindIndex("52998224725")).toBe(c.blindIndex("52998224725"));
		expect(c.blindIndex("52998224725")).toMatch(/^[0-9a-f]{64}$/);
		expect(new PiiCipher([k1], randomBytes(32)).blindIndex("52998224725")).not.toBe(c.blindIndex("52998224725"));
	});

	it("pseudonyms differ per purpose and from the blind index", () => {
		const key = randomBytes(32);
		const a = pseudonymizer(key, "activity")("52998224725");
		const b = pseudonymizer(key, "ml")("52998224725");
		expect(a).not.toBe(b);
		expect(a).toBe(pseudonymizer(key, "activity")("52998224725"));
	});
});

describe("blindIndexer", () => {
	it("gives the cipher's blind index from the blind-index key alone (no data key)", () => {
		const index = blindIndexer(blind);
		expect(index("52998224725")).toBe(new PiiCipher([k1], blind).blindIndex("52998224725"));
		expect(index("52998224725")).not.toBe(blindIndexer(randomBytes(32))("52998224725"));
		expect(index("52998224725")).toMatch(/^[0-9a-f]{64}$/);
	});
});
