import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { fingerprint, openAnswer, sealAnswer, STORE_ANSWER_SQL } from "../../../lib/base-a/idempotency-answer";
import { PiiCipher } from "../../../lib/pii";

const pii = new PiiCipher([{ id: "k1", key: randomBytes(32) }], randomBytes(32));

describe("fingerprint", () => {
	it("is the same for the same action and params, whatever the order of their keys", () => {
		const a = fingerprint("debt-write.create", { cpf: "52998224725", valor: 10, extra: { b: 1, a: [1, { y: 2, x: 1 }] } });
		const b = fingerprint("debt-write.create", { extra: { a: [1, { x: 1, y: 2 }], b: 1 }, valor: 10, cpf: "52998224725" });
		expect(a).toBe(b);
		expect(a).toMatch(/^[0-9a-f]{64}$/);
	});

	it("differs for another action, another value or type, another array order, or a missing field", () => {
		const base = fingerprint("debt-write.create", { valor: 10, tags: [1, 2] });
		expect(fingerprint("persons.create", { valor: 10, tags: [1, 2] })).not.toBe(base);
		expect(fingerprint("debt-write.create", { valor: 11, tags: [1, 2] })).not.toBe(base);
		expect(fingerprint("debt-write.create", { valor: "10", tags: [1, 2] })).not.toBe(base);
		expect(fingerprint("debt-write.create", { valor: 10, tags: [2, 1] })).not.toBe(base);
		expect(fingerprint("debt-write.create", { valor: 10 })).not.toBe(base);
	});
});

describe("sealAnswer and openAnswer", () => {
	it("round-trip an answer's body and location, encrypted", () => {
		const answer = { status: 201, response: { cpf: "52998224725", nome: "Fulano de Tal" }, location: "/api/v1/persons/52998224725" };
		const sealed = sealAnswer(pii, "consumer-1", "key-1", answer);
		expect(sealed).toMatch(/^v1\.k1\./);
		expect(sealed).not.toMatch(/52998224725|Fulano/);
		expect(openAnswer(pii, "consumer-1", "key-1", sealed)).toEqual({ body: answer.response, location: answer.location });
	});

	it("stores an answer without a body as null, and opens nothing stored as {}", () => {
		expect(openAnswer(pii, "c", "k", sealAnswer(pii, "c", "k", { status: 204, response: undefined }))).toEqual({ body: null });
		expect(openAnswer(pii, "c", "k", null)).toEqual({});
	});

	it("binds the answer to its consumer and key: moved to another, it does not open", () => {
		const sealed = sealAnswer(pii, "consumer-1", "key-1", { status: 200, response: { ok: true } });
		expect(() => openAnswer(pii, "consumer-2", "key-1", sealed)).toThrow();
		expect(() => openAnswer(pii, "consumer-1", "key-2", sealed)).toThrow();
	});
});

describe("STORE_ANSWER_SQL", () => {
	it("stores an answer only into its own claim that has none yet", () => {
		expect(STORE_ANSWER_SQL).toMatch(/WHERE consumer_id = \$1 AND key = \$2 AND status IS NULL/);
		expect(STORE_ANSWER_SQL).toMatch(/RETURNING key$/);
	});
});
