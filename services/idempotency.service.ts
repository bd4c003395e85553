import { createHash } from "node:crypto";
import type { Context, ServiceSchema } from "moleculer";
import { BaseAMixin } from "../mixins/base-a.mixin";
import { PiiMixin } from "../mixins/pii.mixin";
import { defineIdempotencyKey } from "../lib/base-a/models";
import { ConflictError } from "../lib/errors";

/** How long a key is remembered; a client retrying later than this starts afresh. */
const KEY_TTL_HOURS = 24;
/**
 * A claim still without an answer this long after it was made is abandoned: the gateway gave up on its
 * request after REQUEST_TIMEOUT_MS, and the write's own queries are bounded by their timeouts.
 */
export const CLAIM_LEASE_SECONDS = 30;

interface KeyRef { consumer: string; key: string }

/** The stable digest of a request: same action and same params → same fingerprint. */
export function fingerprint(action: string, params: unknown): string {
	const canonical = (v: unknown): unknown =>
		v && typeof v === "object" && !Array.isArray(v)
			? Object.fromEntries(Object.keys(v).sort().map(k => [k, canonical((v as any)[k])]))
			: Array.isArray(v) ? v.map(canonical) : v;
	return createHash("sha256").update(action).update("\0").update(JSON.stringify(canonical(params))).digest("hex");
}

/**
 * Base A: remembers the outcome of writes sent with an `Idempotency-Key`, so a retried request
 * gets the first answer instead of a second write. Stored responses are encrypted: they hold PII.
 */
const IdempotencyService: ServiceSchema = {
	name: "idempotency",
	mixins: [BaseAMixin(defineIdempotencyKey), PiiMixin],

	actions: {
		/**
		 * Claims the key, or returns the stored answer; a key reused for another request is a 409, and so
		 * is a key whose first request is still running. A claim left behind (its node died, or its answer
		 * could not be stored) is taken over: at once when the claiming node has left the mesh, otherwise
		 * once CLAIM_LEASE_SECONDS have passed.
		 */
		begin: {
			visibility: "public",
			params: { consumer: "string", key: "string", action: "string", fingerprint: "string" },
			async handler(ctx: Context<KeyRef & { action: string; fingerprint: string }>) {
				const { consumer, key, action, fingerprint } = ctx.params;
				// The node whose middleware claims the key (the caller), which holds it while the write runs.
				const owner = ctx.nodeID ?? this.broker.nodeID;
				const [claimed] = await this.query(
					`INSERT INTO idempotency_keys (consumer_id, key, action, fingerprint, node_id) VALUES ($1, $2, $3, $4, $5)
					 ON CONFLICT (consumer_id, key) DO UPDATE
					   SET action = EXCLUDED.action, fingerprint = EXCLUDED.fingerprint, status = NULL, response_enc = NULL,
					       created_at = now(), node_id = EXCLUDED.node_id
					   WHERE idempotency_keys.created_at < now() - interval '${KEY_TTL_HOURS} hours'
					 RETURNING true AS claimed`,
					[consumer, key, action, fingerprint, owner]
				);
				if (claimed) return { state: "new" };
				const [row] = await this.query("SELECT * FROM idempotency_keys WHERE consumer_id = $1 AND key = $2", [consumer, key]);
				if (!row || row.fingerprint !== fingerprint) throw new ConflictError("This Idempotency-Key was used for a different request", "IDEMPOTENCY_KEY_REUSED");
				if (row.status === null) {
					// Taken over only if it is still the same abandoned claim: of two retries racing, one wins.
					const gone = row.node_id && !this.broker.registry.nodes.get(row.node_id)?.available ? row.node_id : null;
					const [taken] = await this.query(
						`UPDATE idempotency_keys SET node_id = $3, created_at = now()
						  WHERE consumer_id = $1 AND key = $2 AND status IS NULL AND fingerprint = $5
						    AND (created_at < now() - interval '${CLAIM_LEASE_SECONDS} seconds' OR ($4::text IS NOT NULL AND node_id = $4))
						 RETURNING true AS claimed`,
						[consumer, key, owner, gone, fingerprint]
					);
					if (taken) {
						this.logger.warn("Took over an abandoned Idempotency-Key claim", gone ? "(its node left the mesh)" : "(its lease ran out)");
						return { state: "new" };
					}
					throw new ConflictError("A request with this Idempotency-Key is still in progress", "IDEMPOTENCY_IN_PROGRESS");
				}
				const stored = row.response_enc ? JSON.parse(this.pii.decrypt(row.response_enc, `idempotency:${consumer}:${key}`)) : {};
				return { state: "replay", status: row.status, response: stored.body ?? null, location: stored.location };
			}
		},

		complete: {
			visibility: "public",
			params: { consumer: "string", key: "string", status: "number", response: "any", location: "string|optional" },
			async handler(ctx: Context<KeyRef & { status: number; response: unknown; location?: string }>) {
				const { consumer, key, status, response, location } = ctx.params;
				const sealed = this.pii.encrypt(JSON.stringify({ body: response ?? null, location }), `idempotency:${consumer}:${key}`);
				await this.query("UPDATE idempotency_keys SET status = $3, response_enc = $4 WHERE consumer_id = $1 AND key = $2 RETURNING key", [consumer, key, status, sealed]);
				return true;
			}
		},

		/** A failed request frees its key so that the client may retry it. */
		release: {
			visibility: "public",
			params: { consumer: "string", key: "string" },
			async handler(ctx: Context<KeyRef>) {
				await this.query("DELETE FROM idempotency_keys WHERE consumer_id = $1 AND key = $2 AND status IS NULL RETURNING key", [ctx.params.consumer, ctx.params.key]);
				return true;
			}
		}
	}
};

export default IdempotencyService;
