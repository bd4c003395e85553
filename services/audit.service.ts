import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { BaseAMixin, type BaseAThis } from "../mixins/base-a.mixin";
import { defineAuditRow } from "../lib/base-a/models";
import type { MeshLocals, MeshMeta } from "../middlewares/zero-trust.middleware";

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

/** Base A: the insert-only, hash-chained audit log. */
const AuditService: ServiceSchema<ServiceSettingSchema, object, BaseAThis> = {
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
			async handler() {
				const [result] = await this.query<VerifyRow>(VERIFY_SQL);
				const broken = result.broken.map(b => ({ seq: Number(b.seq), reason: b.reason }));
				return { ok: broken.length === 0, rows: result.rows, head: result.head ? Number(result.head) : 0, broken };
			}
		}
	}
};

// Checked above against its own `this`; handed over as Moleculer takes a schema, untyped (types/mixin.ts).
export default AuditService as unknown as ServiceSchema;
