import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/** A new subscription secret, as Standard Webhooks spells it: `whsec_` and base64 of 24 random bytes. */
export function newSecret(): string {
	return `whsec_${randomBytes(24).toString("base64")}`;
}

function key(secret: string): Buffer {
	return Buffer.from(secret.startsWith("whsec_") ? secret.slice(6) : secret, "base64");
}

/** `v1,<base64 HMAC-SHA256 of id.timestamp.body>` under the base64-decoded secret (Standard Webhooks 1.0). */
export function sign(secret: string, id: string, timestamp: number, body: string): string {
	return `v1,${createHmac("sha256", key(secret)).update(`${id}.${timestamp}.${body}`).digest("base64")}`;
}

/** The three headers of a delivery. */
export function signedHeaders(secret: string, id: string, body: string, now = Date.now()): Record<string, string> {
	const timestamp = Math.floor(now / 1000);
	return { "webhook-id": id, "webhook-timestamp": String(timestamp), "webhook-signature": sign(secret, id, timestamp, body) };
}

/**
 * A receiver's check, as the specification describes it: the timestamp within `toleranceSeconds` of
 * now (replays of an old delivery fail) and one of the space-separated `v1,` signatures matching.
 */
export function verify(secret: string, headers: Record<string, string | undefined>, body: string, now = Date.now(), toleranceSeconds = 300): boolean {
	const id = headers["webhook-id"];
	const ts = Number(headers["webhook-timestamp"]);
	const given = headers["webhook-signature"];
	if (!id || !Number.isInteger(ts) || !given) return false;
	if (Math.abs(now / 1000 - ts) > toleranceSeconds) return false;
	const expected = Buffer.from(sign(secret, id, ts, body).slice(3), "base64");
	return given.split(" ").some(part => {
		const [version, sig] = part.split(",");
		if (version !== "v1" || !sig) return false;
		const got = Buffer.from(sig, "base64");
		return got.length === expected.length && timingSafeEqual(got, expected);
	});
}
