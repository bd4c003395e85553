import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { BaseAMixin, type BaseAThis } from "../mixins/base-a.mixin";
import { defineIdempotencyKey } from "../lib/base-a/models";
import { ConflictError } from "../lib/errors";
import { config } from "../config";
import { type Claim, openAnswer, sealAnswer, STORE_ANSWER_SQL } from "../lib/base-a/idempotency-answer";
import type { MeshLocals, MeshMeta } from "../middlewares/zero-trust.middleware";
import type { AuditedParams } from "../middlewares/audit.middleware";
import { REENCRYPT_BATCH } from "../lib/pii";

/** How long a key is remembered; a client retrying later than this starts afresh. */
const KEY_TTL_HOURS = 24;
/** How often expired answers are removed. */
const SWEEP_EVERY_MS = 10 * 60_000;

interface KeyRef { key: string }
/** A claim's key and the token it was claimed with. */
interface HeldRef extends KeyRef { claim: string }

/** A row of idempotency_keys, as begin reads it back. */
interface KeyRow {
	fingerprint: string;
	status: number | null;
	node_id: string | null;
	response_enc: string | null;
	claim: string | null;
}

interface IdempotencyMethods {
	/** Removes the answers past their lifetime; how many. */
	sweep(): Promise<number>;
	/** Whether the node (`nodeID/instanceID`, or a bare node id) holding a claim is known to be gone. */
	ownerGone(owner: string): boolean;
}

interface IdempotencyVars extends BaseAThis {
	sweeper: ReturnType<typeof setInterval>;
	/** When this replica started: after a heartbeat timeout it has met every live node. */
	startedAt: number;
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
		 * is a key whose first request is still running. A claim without an answer is taken over only when
		 * its node is known to be gone (docs/idempotency.md): seen and then lost by this replica, or never
		 * seen although this replica has been up longer than a heartbeat timeout. Never on a timer: a live
		 * node's write may still commit. Each claim has a token, chosen by the caller so that a begin whose
		 * reply was lost can be retried (the key found under the same token is the caller's own) or freed
		 * (release); a Base A write stores its answer only under its own (in its transaction), so a write whose
		 * claim was taken over rolls back.
		 */
		begin: {
			callers: ["base-a", "base-b"], scopes: [],
			visibility: "public",
			params: { key: "string", claim: "uuid", action: "string", fingerprint: "string", cpf: { type: "cpf", optional: true } },
			async handler(ctx: Context<HeldRef & { action: string; fingerprint: string; cpf?: string }, MeshMeta, MeshLocals>): Promise<Claim> {
				const { key, claim, action, fingerprint, cpf } = ctx.params;
				const consumer = ctx.locals.caller!.id;
				// The node whose middleware claims the key (the caller), which holds it while the write runs, and
				// its process (a node restarted under the same id is another process: its old claims are gone).
				const nodeID = ctx.nodeID ?? this.broker.nodeID;
				const instance = nodeID === this.broker.nodeID ? this.broker.instanceID : this.broker.registry.nodes.get(nodeID)?.instanceID;
				const owner = instance ? `${nodeID}/${instance}` : nodeID;
				// A key freed (release) between the insert that found it and the read of it is claimed again.
				for (let attempt = 0; ; attempt++) {
					const [claimed] = await this.query<{ claimed: boolean }>(
						`INSERT INTO idempotency_keys (consumer_id, key, action, fingerprint, node_id, cpf_bidx, claim) VALUES ($1, $2, $3, $4, $5, $6, $7)
						 ON CONFLICT (consumer_id, key) DO UPDATE
						   SET action = EXCLUDED.action, fingerprint = EXCLUDED.fingerprint, status = NULL, response_enc = NULL,
						       created_at = now(), node_id = EXCLUDED.node_id, cpf_bidx = EXCLUDED.cpf_bidx, claim = EXCLUDED.claim
						   WHERE idempotency_keys.created_at < now() - interval '${KEY_TTL_HOURS} hours'
						 RETURNING true AS claimed`,
						[consumer, key, action, fingerprint, owner, cpf ? this.blindIndex(cpf) : null, claim]
					);
					if (claimed) return { state: "new", claim };
					const [row] = await this.query<KeyRow>("SELECT * FROM idempotency_keys WHERE consumer_id = $1 AND key = $2", [consumer, key]);
					if (!row && attempt < 3) continue;
					if (!row || row.fingerprint !== fingerprint) throw new ConflictError("This Idempotency-Key was used for a different request", "IDEMPOTENCY_KEY_REUSED");
					if (row.status === null) {
						// This very claim: a retry of a begin that claimed the key but whose reply was lost (NATS restarted).
						if (row.claim === claim) return { state: "new", claim };
						const gone = row.node_id && this.ownerGone(row.node_id) ? row.node_id : null;
						// Taken over only if it is still the same abandoned claim: of two retries racing, one wins.
						const [taken] = gone ? await this.query<{ claimed: boolean }>(
							`UPDATE idempotency_keys SET node_id = $3, created_at = now(), claim = $5
							  WHERE consumer_id = $1 AND key = $2 AND status IS NULL AND node_id = $4 AND fingerprint = $6
							 RETURNING true AS claimed`,
							[consumer, key, owner, gone, claim, fingerprint]
						) : [];
						if (taken) {
							this.logger.warn("Took over an abandoned Idempotency-Key claim (its node left the mesh)");
							return { state: "new", claim };
						}
						throw new ConflictError("A request with this Idempotency-Key is still in progress", "IDEMPOTENCY_IN_PROGRESS");
					}
					const stored = openAnswer(this.pii, consumer, key, row.response_enc);
					return { state: "replay", status: row.status, response: stored.body ?? null, location: stored.location };
				}
			}
		},

		complete: {
			callers: ["base-a", "base-b"], scopes: [],
			visibility: "public",
			params: { key: "string", claim: "uuid", status: "number", response: "any", location: "string|optional" },
			async handler(ctx: Context<HeldRef & { status: number; response: unknown; location?: string }, MeshMeta, MeshLocals>) {
				const { key, claim, status, response, location } = ctx.params;
				const consumer = ctx.locals.caller!.id;
				// A Base A write stored its answer in its own transaction already: then this changes nothing.
				await this.query(STORE_ANSWER_SQL, [consumer, key, status, sealAnswer(this.pii, consumer, key, { status, response, location }), claim]);
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

		/**
		 * Whether the claim is still this request's (not taken over, not answered): asked by a Base B write
		 * right before it writes (docs/idempotency.md). A node cut off from the mesh long enough to be thought
		 * gone cannot ask, so it does not write.
		 */
		held: {
			callers: ["base-b"], scopes: [],
			visibility: "public",
			params: { key: "string", claim: "uuid" },
			async handler(ctx: Context<HeldRef, MeshMeta, MeshLocals>): Promise<boolean> {
				const rows = await this.query("SELECT key FROM idempotency_keys WHERE consumer_id = $1 AND key = $2 AND status IS NULL AND claim = $3", [ctx.locals.caller!.id, ctx.params.key, ctx.params.claim]);
				return rows.length === 1;
			}
		},

		/** A failed request frees its key so that the client may retry it. */
		release: {
			callers: ["base-a", "base-b"], scopes: [],
			visibility: "public",
			params: { key: "string", claim: "uuid" },
			async handler(ctx: Context<HeldRef, MeshMeta, MeshLocals>) {
				// Only its own claim: one taken over since belongs to the request that took it.
				await this.query("DELETE FROM idempotency_keys WHERE consumer_id = $1 AND key = $2 AND status IS NULL AND claim = $3 RETURNING key", [ctx.locals.caller!.id, ctx.params.key, ctx.params.claim]);
				return true;
			}
		}
	},

	methods: {
		ownerGone(owner: string): boolean {
			const [nodeID, instance] = owner.split("/");
			const holder = this.broker.registry.nodes.get(nodeID);
			if (holder) return !holder.available || (instance !== undefined && holder.instanceID !== instance);
			// Never met: gone only if it would have been met by now (every live node heartbeats into the registry).
			return Date.now() - this.startedAt > (config.heartbeatTimeout + config.heartbeatInterval) * 1000;
		},

		/** Removes the answers past their lifetime: a key is remembered KEY_TTL_HOURS, not for ever. */
		async sweep(): Promise<number> {
			const gone = await this.query(`DELETE FROM idempotency_keys WHERE created_at < now() - interval '${KEY_TTL_HOURS} hours' RETURNING key`);
			return gone.length;
		}
	},

	started() {
		this.startedAt = Date.now();
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
