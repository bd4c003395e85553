import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { BaseAMixin, type BaseAThis } from "../mixins/base-a.mixin";
import { defineIdempotencyKey } from "../lib/base-a/models";
import { ConflictError } from "../lib/errors";
import { type Claim, openAnswer, sealAnswer, STORE_ANSWER_SQL } from "../lib/base-a/idempotency-answer";
import type { MeshLocals, MeshMeta } from "../middlewares/zero-trust.middleware";
import type { AuditedParams } from "../middlewares/audit.middleware";
import { REENCRYPT_BATCH } from "../lib/pii";

/** How long a key is remembered; a client retrying later than this starts afresh. */
const KEY_TTL_HOURS = 24;
/**
 * A claim still without an answer this long after it was made is abandoned: the gateway gave up on its
 * request after REQUEST_TIMEOUT_MS, and the write's own queries are bounded by their timeouts.
 */
export const CLAIM_LEASE_SECONDS = 30;
/** How often expired answers are removed. */
const SWEEP_EVERY_MS = 10 * 60_000;

interface KeyRef { key: string }

/** A row of idempotency_keys, as begin reads it back. */
interface KeyRow {
	fingerprint: string;
	status: number | null;
	node_id: string | null;
	response_enc: string | null;
}

interface IdempotencyMethods {
	/** Removes the answers past their lifetime; how many. */
	sweep(): Promise<number>;
}

interface IdempotencyVars extends BaseAThis {
	sweeper: ReturnType<typeof setInterval>;
}

/**
 * Base A: remembers the outcome of writes sent with an `Idempotency-Key`, so a retried request
 * gets the first answer instead of a second write. Stored responses are encrypted: they hold PII.
 */
const IdempotencyService: ServiceSchema<ServiceSettingSchema, IdempotencyMethods, IdempotencyVars> = {
	name: "idempotency",
	mixins: [BaseAMixin(defineIdempotencyKey)],

	actions: {
		/**
		 * Claims the key, or returns the stored answer; a key reused for another request is a 409, and so
		 * is a key whose first request is still running. A claim left behind (its node died, or its answer
		 * could not be stored) is taken over: at once when the claiming node has left the mesh, otherwise
		 * once CLAIM_LEASE_SECONDS have passed.
		 */
		begin: {
			callers: ["base-a", "base-b"], scopes: [],
			visibility: "public",
			params: { key: "string", action: "string", fingerprint: "string", cpf: { type: "cpf", optional: true } },
			async handler(ctx: Context<KeyRef & { action: string; fingerprint: string; cpf?: string }, MeshMeta, MeshLocals>): Promise<Claim> {
				const { key, action, fingerprint, cpf } = ctx.params;
				const consumer = ctx.locals.caller!.id;
				// The node whose middleware claims the key (the caller), which holds it while the write runs.
				const owner = ctx.nodeID ?? this.broker.nodeID;
				const [claimed] = await this.query<{ claimed: boolean }>(
					`INSERT INTO idempotency_keys (consumer_id, key, action, fingerprint, node_id, cpf_bidx) VALUES ($1, $2, $3, $4, $5, $6)
					 ON CONFLICT (consumer_id, key) DO UPDATE
					   SET action = EXCLUDED.action, fingerprint = EXCLUDED.fingerprint, status = NULL, response_enc = NULL,
					       created_at = now(), node_id = EXCLUDED.node_id, cpf_bidx = EXCLUDED.cpf_bidx
					   WHERE idempotency_keys.created_at < now() - interval '${KEY_TTL_HOURS} hours'
					 RETURNING true AS claimed`,
					[consumer, key, action, fingerprint, owner, cpf ? this.blindIndex(cpf) : null]
				);
				if (claimed) return { state: "new" };
				const [row] = await this.query<KeyRow>("SELECT * FROM idempotency_keys WHERE consumer_id = $1 AND key = $2", [consumer, key]);
				if (!row || row.fingerprint !== fingerprint) throw new ConflictError("This Idempotency-Key was used for a different request", "IDEMPOTENCY_KEY_REUSED");
				if (row.status === null) {
					// Taken over only if it is still the same abandoned claim: of two retries racing, one wins.
					// Gone means seen and then lost: a node this replica has not met yet may be alive (its lease applies).
					const holder = row.node_id ? this.broker.registry.nodes.get(row.node_id) : undefined;
					const gone = holder && !holder.available ? row.node_id : null;
					const [taken] = await this.query<{ claimed: boolean }>(
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
				const stored = openAnswer(this.pii, consumer, key, row.response_enc);
				return { state: "replay", status: row.status, response: stored.body ?? null, location: stored.location };
			}
		},

		complete: {
			callers: ["base-a", "base-b"], scopes: [],
			visibility: "public",
			params: { key: "string", status: "number", response: "any", location: "string|optional" },
			async handler(ctx: Context<KeyRef & { status: number; response: unknown; location?: string }, MeshMeta, MeshLocals>) {
				const { key, status, response, location } = ctx.params;
				const consumer = ctx.locals.caller!.id;
				// A Base A write stored its answer in its own transaction already: then this changes nothing.
				await this.query(STORE_ANSWER_SQL, [consumer, key, status, sealAnswer(this.pii, consumer, key, { status, response, location })]);
				return true;
			}
		},

		/**
		 * One batch of `keys:reencrypt`: the stored answers after `after` ([consumer, key]), each one not
		 * under the current PII key sealed again under it, in one short transaction.
		 */
		reencrypt: {
			callers: ["operators"], scopes: [], audit: true,
			visibility: "public",
			params: { $$strict: true, after: { type: "array", items: "string", length: 2, optional: true }, limit: REENCRYPT_BATCH },
			async handler(ctx: Context<{ after?: [string, string]; limit: number }, MeshMeta, MeshLocals>) {
				const { after, limit } = ctx.params;
				return this.inTransaction(async transaction => {
					const rows = await this.query<{ consumer_id: string; key: string; response_enc: string | null }>(
						`SELECT consumer_id, key, response_enc FROM idempotency_keys WHERE $1::text IS NULL OR (consumer_id, key) > ($1::text, $2::text)
						 ORDER BY consumer_id, key LIMIT $3 FOR UPDATE`, [after?.[0] ?? null, after?.[1] ?? null, limit], transaction);
					let changed = 0;
					let unreadable = 0;
					for (const row of rows) {
						if (!row.response_enc || !this.pii.isStale(row.response_enc)) continue;
						const aad = `idempotency:${row.consumer_id}:${row.key}`;
						let sealed: string;
						try {
							sealed = this.pii.encrypt(this.pii.decrypt(row.response_enc, aad), aad);
						} catch {
							unreadable++;
							continue;
						}
						await this.query("UPDATE idempotency_keys SET response_enc = $3 WHERE consumer_id = $1 AND key = $2 RETURNING key", [row.consumer_id, row.key, sealed], transaction);
						changed++;
					}
					const last = rows[rows.length - 1];
					const total = after ? undefined : Number((await this.query<{ n: string }>("SELECT count(*) AS n FROM idempotency_keys", [], transaction))[0].n);
					return { scanned: rows.length, changed, unreadable, next: rows.length === limit ? [last.consumer_id, last.key] : null, total };
				}, ctx as Context<AuditedParams, MeshMeta, MeshLocals>);
			}
		},

		/** A failed request frees its key so that the client may retry it. */
		release: {
			callers: ["base-a", "base-b"], scopes: [],
			visibility: "public",
			params: { key: "string" },
			async handler(ctx: Context<KeyRef, MeshMeta, MeshLocals>) {
				await this.query("DELETE FROM idempotency_keys WHERE consumer_id = $1 AND key = $2 AND status IS NULL RETURNING key", [ctx.locals.caller!.id, ctx.params.key]);
				return true;
			}
		}
	},

	methods: {
		/** Removes the answers past their lifetime: a key is remembered KEY_TTL_HOURS, not for ever. */
		async sweep(): Promise<number> {
			const gone = await this.query(`DELETE FROM idempotency_keys WHERE created_at < now() - interval '${KEY_TTL_HOURS} hours' RETURNING key`);
			return gone.length;
		}
	},

	started() {
		// Every replica sweeps; the DELETE is the same whoever runs it.
		this.sweeper = setInterval(() => this.sweep().catch((err: Error) => this.logger.warn("Idempotency sweep failed:", err.name)), SWEEP_EVERY_MS);
		this.sweeper.unref();
	},

	stopped() {
		clearInterval(this.sweeper);
	}
};

// Checked above against its own `this`; handed over as Moleculer takes a schema, untyped (types/mixin.ts).
export default IdempotencyService as unknown as ServiceSchema;
