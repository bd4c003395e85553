import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { BaseAMixin, type BaseAThis } from "../mixins/base-a.mixin";
import { defineAuditRow } from "../lib/base-a/models";
import type { MeshLocals, MeshMeta } from "../middlewares/zero-trust.middleware";
import { config } from "../config";

/** 1 when the last verification found the hash chain whole, 0 when it found a row changed or missing. */
export const AUDIT_CHAIN_OK = "credit_mesh.audit.chain.ok";
/** When the chain was last verified (Unix seconds): an alert that never sees it fresh knows the check stopped. */
export const AUDIT_CHAIN_VERIFIED_AT = "credit_mesh.audit.chain.verified.timestamp.seconds";

// Recomputes every row's hash with the same SQL function the insert trigger used, and checks
// each row links to the one before it with no gap in the sequence.
const VERIFY_SQL = `
	WITH checked AS (
		SELECT seq, hash,
		       hash = audit_row_hash(a) AS hash_ok,
		       prev_hash = COALESCE(lag(hash) OVER w, repeat('0', 64)) AS link_ok,
		       seq = COALESCE(lag(seq) OVER w, 0) + 1 AS seq_ok
		  FROM audit_log a
		WINDOW w AS (ORDER BY seq)
	)
	SELECT (SELECT count(*) FROM checked)::int AS rows,
	       (SELECT max(seq) FROM checked)::text AS head,
	       COALESCE((SELECT json_agg(b) FROM (
	           SELECT seq::text, CASE WHEN NOT hash_ok THEN 'row changed'
	                                  WHEN NOT seq_ok THEN 'row missing before it'
	                                  ELSE 'chain link broken' END AS reason
	             FROM checked WHERE NOT (hash_ok AND link_ok AND seq_ok) ORDER BY seq LIMIT 20) b), '[]') AS broken`;

interface AppendParams { action: string; cpfBidx?: string | null; requestId?: string; outcome: string }

/** A row of the audit list, as the query names its columns. */
interface EntryRow { seq: string; at: Date; consumer: string; action: string; request_id: string | null; outcome: string }

/** What VERIFY_SQL answers. */
interface VerifyRow { rows: number; head: string | null; broken: { seq: string; reason: string }[] }

interface VerifyResult { ok: boolean; rows: number; head: number; broken: { seq: number; reason: string }[] }

/** Base A: the insert-only, hash-chained audit log. */
type AuditThis = BaseAThis & { verifyChain(): Promise<VerifyResult>; verifyTimer?: NodeJS.Timeout };

/**
 * Base A: the insert-only, hash-chained audit log. The chain is verified every AUDIT_VERIFY_SECONDS
 * (and at each audit.verify call); the result is a gauge for the "audit chain broken" alert.
 */
const AuditService: ServiceSchema<ServiceSettingSchema, { verifyChain(): Promise<VerifyResult> }, AuditThis> = {
	name: "audit",
	mixins: [BaseAMixin(defineAuditRow)],

	created() {
		if (!this.broker.isMetricsEnabled()) return;
		this.broker.metrics.register({ name: AUDIT_CHAIN_OK, type: "gauge", description: "Audit hash chain whole at the last verification (1) or broken (0)" });
		this.broker.metrics.register({ name: AUDIT_CHAIN_VERIFIED_AT, type: "gauge", description: "Unix time of the last audit chain verification" });
	},

	started() {
		if (!config.auditVerifySeconds) return;
		// A failed run (Base A down) leaves the last result; the alert on its age notices if it keeps failing.
		const run = () => void this.verifyChain().catch(err => this.logger.warn("Audit chain verification failed:", err?.name, err?.code));
		setTimeout(run, 1000).unref();
		this.verifyTimer = setInterval(run, config.auditVerifySeconds * 1000);
		this.verifyTimer.unref();
	},

	stopped() {
		clearInterval(this.verifyTimer);
	},

	methods: {
		async verifyChain(): Promise<VerifyResult> {
			const [result] = await this.query<VerifyRow>(VERIFY_SQL);
			const broken = result.broken.map(b => ({ seq: Number(b.seq), reason: b.reason }));
			if (this.broker.isMetricsEnabled()) {
				this.broker.metrics.set(AUDIT_CHAIN_OK, broken.length === 0 ? 1 : 0);
				this.broker.metrics.set(AUDIT_CHAIN_VERIFIED_AT, Math.floor(Date.now() / 1000));
			}
			return { ok: broken.length === 0, rows: result.rows, head: result.head ? Number(result.head) : 0, broken };
		}
	},

	actions: {
		append: {
			callers: ["base-a", "base-b", "report", "privacy"],
			visibility: "public",
			params: {
				action: { type: "string", max: 100 },
				cpfBidx: { type: "string", length: 64, optional: true, nullable: true },
				requestId: { type: "string", max: 100, optional: true },
				outcome: { type: "string", max: 40 }
			},
			async handler(ctx: Context<AppendParams, MeshMeta, MeshLocals>) {
				const p = ctx.params;
				// Whom the row names is proven, not claimed: the verified caller, else the calling group.
				const consumer = ctx.locals.caller?.id ?? `group:${ctx.locals.callerGroup ?? "unknown"}`;
				// seq, at and the hashes are filled in by the trigger.
				const [row] = await this.query<{ seq: string }>(
					`INSERT INTO audit_log (seq, at, consumer, action, cpf_bidx, request_id, outcome, prev_hash, hash)
					 VALUES (0, now(), $1, $2, $3, $4, $5, '', '') RETURNING seq::text`,
					[consumer, p.action, p.cpfBidx ?? null, p.requestId ?? null, p.outcome]
				);
				return { seq: Number(row.seq) };
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
				rows: { type: "array", min: 1, max: 1000, items: { type: "object", strict: true, props: { cpfBidx: { type: "string", length: 64 }, outcome: { type: "string", max: 40 } } } }
			},
			async handler(ctx: Context<{ action: string; requestId?: string; rows: { cpfBidx: string; outcome: string }[] }, MeshMeta, MeshLocals>) {
				const p = ctx.params;
				const consumer = ctx.locals.caller?.id ?? `group:${ctx.locals.callerGroup ?? "unknown"}`;
				const rows = await this.query<{ n: number }>(
					`WITH added AS (
					   INSERT INTO audit_log (seq, at, consumer, action, cpf_bidx, request_id, outcome, prev_hash, hash)
					   SELECT 0, now(), $1, $2, r.bidx, $3, r.outcome, '', ''
					     FROM unnest($4::char(64)[], $5::text[]) WITH ORDINALITY AS r(bidx, outcome, n) ORDER BY r.n
					   RETURNING 1)
					 SELECT count(*)::int AS n FROM added`,
					[consumer, p.action, p.requestId ?? null, p.rows.map(r => r.cpfBidx), p.rows.map(r => r.outcome)]
				);
				return { appended: rows[0].n };
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
			params: { $$strict: true },
			handler() {
				return this.verifyChain();
			}
		}
	}
};

// Checked above against its own `this`; handed over as Moleculer takes a schema, untyped (types/mixin.ts).
export default AuditService as unknown as ServiceSchema;
