import { createHash } from "node:crypto";
import type { PiiCipher } from "../pii";

/**
 * The stored answer of an Idempotency-Key claim: only the claim still without one, and only under the
 * token it was claimed with ($5); no row back means the claim is no longer this request's (taken over).
 */
export const STORE_ANSWER_SQL =
	"UPDATE idempotency_keys SET status = $3, response_enc = $4 WHERE consumer_id = $1 AND key = $2 AND status IS NULL AND claim = $5 RETURNING key";

/** `ctx.meta.idempotency`: the Idempotency-Key a write was sent with (the gateway puts it there). */
export interface IdempotencyMeta {
	key: string;
	/** The action the key belongs to; meta travels into nested calls, which must not be caught too. */
	action: string;
}

/** A write's answer as kept for the retries of its Idempotency-Key. */
export interface StoredAnswer {
	status: number;
	response: unknown;
	location?: string;
}

/** What idempotency.begin answers: the write may go ahead (its key is claimed), or the stored answer to replay. */
export type Claim = { state: "new"; claim: string } | ({ state: "replay" } & StoredAnswer);

/** The answer encrypted (it holds personal data) and bound to its consumer and key. */
export function sealAnswer(pii: PiiCipher, consumer: string, key: string, answer: StoredAnswer): string {
	return pii.encrypt(JSON.stringify({ body: answer.response ?? null, location: answer.location }), `idempotency:${consumer}:${key}`);
}

/** The stored answer's body and location, or {} when none is stored. */
export function openAnswer(pii: PiiCipher, consumer: string, key: string, sealed: string | null): { body?: unknown; location?: string } {
	return sealed ? JSON.parse(pii.decrypt(sealed, `idempotency:${consumer}:${key}`)) : {};
}

/** The stable digest of a request: same action and same params → same fingerprint. */
export function fingerprint(action: string, params: unknown): string {
	const canonical = (v: unknown): unknown =>
		v && typeof v === "object" && !Array.isArray(v)
			? Object.fromEntries(Object.keys(v).sort().map(k => [k, canonical((v as Record<string, unknown>)[k])]))
			: Array.isArray(v) ? v.map(canonical) : v;
	return createHash("sha256").update(action).update("\0").update(JSON.stringify(canonical(params))).digest("hex");
}
