import { createHmac } from "node:crypto";
import fc from "fast-check";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { newSecret, sign, signedHeaders, verify } from "../../../lib/webhooks/signature";

// Standard Webhooks 1.0: v1,<base64 HMAC-SHA256 of "id.timestamp.body"> under the base64-decoded whsec_ secret.
describe("webhook signatures", () => {
	it("matches the specification's construction, computed independently", () => {
		const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
		const body = '{"test": 2432232314}';
		const expected = createHmac("sha256", Buffer.from("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "base64")).update(`msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.${body}`).digest("base64");
		expect(sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)).toBe(`v1,${expected}`);
	});

	it("makes whsec_ secrets of 24 random bytes", () => {
		const s = newSecret();
		expect(s).toMatch(/^whsec_[A-Za-z0-9+/]{32}$/);
		expect(Buffer.from(s.slice(6), "base64")).toHaveLength(24);
		expect(newSecret()).not.toBe(s);
	});

	it("verifies what it signs, and nothing altered, stale or signed with another secret", () => {
		fc.assert(fc.property(fc.uuid(), fc.string(), fc.string({ minLength: 1 }), (id, body, extra) => {
			const secret = newSecret();
			const now = Date.now();
			const headers = signedHeaders(secret, id, body, now);
			expect(verify(secret, headers, body, now)).toBe(true);
			expect(verify(secret, headers, body + extra, now)).toBe(false);
			expect(verify(secret, { ...headers, "webhook-id": `${id}x` }, body, now)).toBe(false);
			expect(verify(secret, headers, body, now + 301_000)).toBe(false);
			expect(verify(newSecret(), headers, body, now)).toBe(false);
		}), { numRuns: 200 });
	});

	it("signs what the specification's npm library (standardwebhooks) verifies", () => {
		fc.assert(fc.property(fc.uuid(), fc.json(), (id, body) => {
			const secret = newSecret();
			expect(new Webhook(secret).verify(body, signedHeaders(secret, id, body))).toEqual(JSON.parse(body));
			expect(() => new Webhook(newSecret()).verify(body, signedHeaders(secret, id, body))).toThrow();
		}), { numRuns: 100 });
	});
});
