import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { BaseAMixin, type BaseAThis } from "../mixins/base-a.mixin";
import { defineAuditRow } from "../lib/base-a/models";
import { config, need } from "../config";
import { AuditWriter } from "../lib/base-a/audit-writer";
import { EPOCH_MARKER, messageDigest, signCheckpoint } from "../lib/base-a/audit-chain";
import { type GoodCheckpoint, ROWS_SQL, type StoredRow, type VerifySources, verifyLog } from "../lib/base-a/audit-verify";
import type { MeshLocals, MeshMeta } from "../middlewares/zero-trust.middleware";
import { consultingConsumer } from "../middlewares/consultation.middleware";
import { consultedEventId } from "../lib/webhooks/events";
import type { AuditEntry } from "../lib/base-a/audit-writer";

/** 1 when the last verification found the hash chain whole, 0 when it found a row changed or missing. */
export const AUDIT_CHAIN_OK = "credit_mesh.audit.chain.ok";
/** When the chain was last verified (Unix seconds): an alert that never sees it fresh knows the check stopped. */
export const AUDIT_CHAIN_VERIFIED_AT = "credit_mesh.audit.chain.verified.timestamp.seconds";

interface AppendParams { action: string; cpfBidx?: string | null; requestId?: string; outcome: string; consulted?: boolean }

/**
 * The `consulted` event of a consultation's audit row (docs/webhooks.md): who consulted (the verified
 * caller; told to subscribers only as "you", "another-consumer" or "operator") and the purpose stated.
 */
function consultedEvent(ctx: Context<unknown, MeshMeta, MeshLocals>, requestId: string | undefined, cpfBidx: string | null | undefined, outcome: string): Pick<AuditEntry, "consulted"> {
	if (outcome !== "ok" || !cpfBidx) return {};
	const data = { purpose: ctx.meta?.finalidade ?? null, by: consultingConsumer(ctx.locals?.caller) };
	return { consulted: { id: consultedEventId(requestId, cpfBidx), data, namespace: ctx.broker.namespace } };
}

/** A row of the audit list, as the query names its columns. */
interface EntryRow { seq: string; at: Date; consumer: string; action: string; request_id: string | null; outcome: string }

interface AuditMethods {
	/** Where verification reads: this service's pool, the checkpoint stream, the keys. */
	sources(): VerifySources;
	/** Verifies the rows since the last good checkpoint and publishes a signed one of the head; the result, or null when nothing was published. */
	checkpoint(): Promise<GoodCheckpoint | null>;
	/** The chain's gauges from a verification's outcome. */
	recordVerification(ok: boolean): void;
}

interface AuditVars extends BaseAThis {
	writer: AuditWriter;
	/** The newest checkpoint a verification of this process found good: where the next incremental one starts. */
	lastGood: GoodCheckpoint | null;
	checkpointTimer?: ReturnType<typeof setInterval>;
	/** The checkpoint being made, if one is: a tick never starts a second one beside it. */
	checkpointing?: Promise<unknown>;
	/** The periodic full verification (AUDIT_VERIFY_SECONDS) that keeps the chain's gauges fresh. */
	verifyTimer?: ReturnType<typeof setInterval>;
}

/**
 * Base A: the insert-only audit log, chained with a key the database does not hold, its head checkpointed
 * outside it. Every verification (incremental at each checkpoint, full every AUDIT_VERIFY_SECONDS and on
 * request) sets the chain's gauges for the "audit chain broken" alert.
 */
const AuditService: ServiceSchema<ServiceSettingSchema, AuditMethods, AuditVars> = {
	name: "audit",
	mixins: [BaseAMixin(defineAuditRow)],

	actions: {
		append: {
			callers: ["base-a", "base-b", "report", "privacy"],
			visibility: "public",
			params: {
				action: { type: "string", max: 100 },
				cpfBidx: { type: "string", length: 64, optional: true, nullable: true },
				requestId: { type: "string", max: 100, optional: true },
				outcome: { type: "string", max: 40 },
				consulted: { type: "boolean", optional: true }
			},
			async handler(ctx: Context<AppendParams, MeshMeta, MeshLocals>) {
				const p = ctx.params;
				// Whom the row names is proven, not claimed: the verified caller, else the calling group.
				const consumer = ctx.locals.caller?.id ?? `group:${ctx.locals.callerGroup ?? "unknown"}`;
				// seq, time and the keyed hash are made by the writer, under the chain's lock.
				const event = p.consulted ? consultedEvent(ctx, p.requestId, p.cpfBidx, p.outcome) : {};
				const seq = await this.writer.append({ consumer, action: p.action, cpfBidx: p.cpfBidx ?? null, requestId: p.requestId ?? null, outcome: p.outcome, ...event });
				return { seq };
			}
		},

		/**
		 * The rows of many CPFs in one INSERT (a batch: POST /scores/batch), in the order given: the chain
		 * trigger runs per row and sees the rows before it in the same statement, so the chain stays whole.
		 */
		appendMany: {
			callers: ["report"],
			visibility: "public",
			params: {
				action: { type: "string", max: 100 },
				requestId: { type: "string", max: 100, optional: true },
				rows: { type: "array", min: 1, max: 1000, items: { type: "object", strict: true, props: { cpfBidx: { type: "string", length: 64 }, outcome: { type: "string", max: 40 } } } },
				consulted: { type: "boolean", optional: true }
			},
			async handler(ctx: Context<{ action: string; requestId?: string; rows: { cpfBidx: string; outcome: string }[]; consulted?: boolean }, MeshMeta, MeshLocals>) {
				const p = ctx.params;
				const consumer = ctx.locals.caller?.id ?? `group:${ctx.locals.callerGroup ?? "unknown"}`;
				// Queued together, the writer appends them in as few transactions as its batch allows (group commit).
				const seqs = await Promise.all(p.rows.map(r => this.writer.append({
					consumer, action: p.action, cpfBidx: r.cpfBidx, requestId: p.requestId ?? null, outcome: r.outcome,
					...(p.consulted ? consultedEvent(ctx, p.requestId, r.cpfBidx, r.outcome) : {})
				})));
				return { appended: seqs.length };
			}
		},

		list: {
			callers: ["api", "privacy", "operators"], scopes: ["audit:read", "privacy:admin"],
			params: {
				$$strict: true,
				cpf: { type: "cpf", optional: true },
				from: { type: "date", optional: true },
				to: { type: "date", optional: true },
				// Bounded by what the answer can carry exactly (and PostgreSQL's bigint holds): never a 500.
				after: { type: "number", integer: true, min: 0, max: Number.MAX_SAFE_INTEGER, convert: true, optional: true },
				limit: { type: "number", integer: true, min: 1, max: 500, convert: true, default: 100 }
			},
			async handler(ctx: Context<{ cpf?: string; from?: string; to?: string; after?: number; limit: number }, MeshMeta, MeshLocals>) {
				const { cpf, from, to, after, limit } = ctx.params;
				const rows = await this.query<EntryRow>(
					// Rows written under an action's older name are shown under its current one (migration 005).
					`SELECT a.seq::text, a.at, a.consumer, COALESCE(n.action, a.action) AS action, a.request_id, a.outcome
					   FROM audit_log a LEFT JOIN audit_action_names n ON n.recorded = a.action
					  WHERE ($1::char(64) IS NULL OR a.cpf_bidx = $1)
					    AND ($2::date IS NULL OR a.at >= $2::date)
					    AND ($3::date IS NULL OR a.at < $3::date + 1)
					    AND a.seq > $4
					  ORDER BY a.seq LIMIT $5`,
					[cpf ? this.blindIndex(cpf) : null, from ?? null, to ?? null, after ?? 0, limit]
				);
				const entries = rows.map(r => ({
					seq: Number(r.seq), at: new Date(r.at).toISOString(), consumer: r.consumer,
					action: r.action, requestId: r.request_id, outcome: r.outcome
				}));
				return { entries, next: entries.length === limit ? entries[entries.length - 1].seq : null };
			}
		},

		verify: {
			callers: ["api", "operators"], scopes: ["audit:read"],
			// Incremental by default: from the last good checkpoint; `full` checks every row and checkpoint.
			params: { $$strict: true, full: { type: "boolean", convert: true, optional: true } },
			async handler(ctx: Context<{ full?: boolean }>) {
				const full = ctx.params.full === true;
				const result = await verifyLog(this.sources(), full, full ? null : this.lastGood);
				if (result.ok && result.checkpoint) this.lastGood = result.checkpoint;
				this.recordVerification(result.ok);
				const cp = result.checkpoint?.cp;
				return {
					ok: result.ok, mode: result.mode, rows: result.rows, head: result.head,
					checkpoint: cp ? { seq: cp.seq, at: cp.at } : null, broken: result.broken
				};
			}
		}
	},

	methods: {
		recordVerification(ok: boolean) {
			if (!this.broker.isMetricsEnabled()) return;
			this.broker.metrics.set(AUDIT_CHAIN_OK, ok ? 1 : 0);
			this.broker.metrics.set(AUDIT_CHAIN_VERIFIED_AT, Math.floor(Date.now() / 1000));
		},

		sources(): VerifySources {
			return {
				rows: (after, limit, epoch) => this.query<StoredRow>(ROWS_SQL, [after, limit, epoch]),
				head: async () => Number((await this.query<{ head: string }>("SELECT coalesce(max(seq), 0)::text AS head FROM audit_log"))[0].head),
				markerSeq: async () => {
					const [row] = await this.query<{ seq: string }>(
						"SELECT a.seq::text FROM audit_log a WHERE a.key_id IS NOT NULL AND a.action = $1 AND a.outcome = $2 AND a.consumer = $3 ORDER BY a.seq LIMIT 1",
						[EPOCH_MARKER.action, EPOCH_MARKER.outcome, EPOCH_MARKER.consumer]
					);
					return row ? Number(row.seq) : null;
				},
				message: seq => this.broker.channels.message("auditCheckpoints", seq),
				keys: need(config, "auditChainKeys"),
				publicKey: need(config, "meshPublicKeys").get("base-a")!,
				namespace: this.broker.namespace
			};
		},

		async checkpoint(): Promise<GoodCheckpoint | null> {
			const result = await verifyLog(this.sources(), false, this.lastGood);
			this.recordVerification(result.ok);
			if (!result.ok) {
				// Never sign a head that does not verify; the operators' verify names the rows.
				this.logger.error(`Audit log does not verify (${result.broken.length} finding(s), first at seq ${result.broken[0].seq}): no checkpoint published`);
				return null;
			}
			this.lastGood = result.checkpoint;
			const last = await this.broker.channels.message("auditCheckpoints");
			if (result.checkpoint && result.checkpoint.cp.seq === result.head && last?.seq === result.checkpoint.streamSeq) return null;
			const marker = await this.sources().markerSeq();
			const cp = {
				v: 1 as const, namespace: this.broker.namespace, epoch: marker!, seq: result.head, hash: result.headHash,
				at: new Date().toISOString(), node: this.broker.nodeID, prevSeq: last?.seq ?? 0, prevDigest: last ? messageDigest(last.data) : ""
			};
			const signed = signCheckpoint(cp, need(config, "meshKeys").get("base-a")!);
			try {
				const ack = await this.broker.channels.append("auditCheckpoints", JSON.stringify(signed), last?.seq ?? 0);
				this.lastGood = { streamSeq: ack.seq, cp };
				return this.lastGood;
			} catch (err) {
				// Another replica published first (the stream's last message moved): its checkpoint serves.
				this.logger.debug("Audit checkpoint not published:", (err as Error)?.message);
				return null;
			}
		}
	},

	created() {
		need(config, "auditChainKeys");
		if (!config.meshKeys?.get("base-a")) throw new Error("The audit service signs its checkpoints with base-a's key (MESH_KEYS)");
		this.lastGood = null;
		if (!this.broker.isMetricsEnabled()) return;
		this.broker.metrics.register({ name: AUDIT_CHAIN_OK, type: "gauge", description: "Audit hash chain whole at the last verification (1) or broken (0)" });
		this.broker.metrics.register({ name: AUDIT_CHAIN_VERIFIED_AT, type: "gauge", description: "Unix time of the last audit chain verification" });
	},

	async started() {
		this.writer = new AuditWriter(work => this.adapter.db.transaction(t => work((sql, bind) => this.query(sql, bind, t))), need(config, "auditChainKeys"));
		// The keyed chain begins (its marker row) now, or else with the first append (Base A may still be starting).
		await this.writer.begin().catch((err: Error) => this.logger.warn("Audit chain not begun yet (done by the first append):", err?.name));
		// One at a time: the first checkpoint of a new deployment verifies the whole chain, which can take longer
		// than the interval; overlapping ones each verified it again and took every connection of the pool
		// (the appends then answered 503: found by the benchmarks, where each run's namespace starts anew).
		this.checkpointTimer = setInterval(() => {
			if (this.checkpointing) return;
			this.checkpointing = this.checkpoint()
				.catch((err: Error) => this.logger.warn("Audit checkpoint failed:", err?.name, err?.message))
				.finally(() => (this.checkpointing = undefined));
		}, config.auditCheckpointSeconds * 1000);
		this.checkpointTimer.unref();
		if (config.auditVerifySeconds) {
			// A failed run (Base A down) leaves the last result; the alert on its age notices if it keeps failing.
			const full = () => void verifyLog(this.sources(), true, null).then(r => this.recordVerification(r.ok))
				.catch((err: Error) => this.logger.warn("Audit chain verification failed:", err?.name));
			setTimeout(full, 1000).unref();
			this.verifyTimer = setInterval(full, config.auditVerifySeconds * 1000);
			this.verifyTimer.unref();
		}
	},

	async stopped() {
		clearInterval(this.checkpointTimer);
		clearInterval(this.verifyTimer);
		// The head at shutdown, so that no row of this run is left beyond the last checkpoint for long; not when
		// a checkpoint is being made (a first one may verify for minutes: shutdown does not wait for it).
		if (!this.checkpointing) await this.checkpoint().catch((err: Error) => this.logger.warn("Audit checkpoint at shutdown failed:", err?.name, err?.message));
	}
};

// Checked above against its own `this`; handed over as Moleculer takes a schema, untyped (types/mixin.ts).
export default AuditService as unknown as ServiceSchema;
