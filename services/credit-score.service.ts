import type { Context, Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import type { MeshLocals, MeshMeta } from "../middlewares/zero-trust.middleware";
import { type BatchAnswer, BatchMixin, type BatchRun, type BatchThis, CHUNK_TIMEOUT_MS, type ManyRead } from "../mixins/batch.mixin";
import { config, need } from "../config";
import { blindIndexer } from "../lib/pii";
import { NotFoundError, type Thrown } from "../lib/errors";
import type { PartName, ScoreInputs } from "../lib/credit-score/inputs";
import { type CreditScore, scoreCredit } from "../lib/credit-score/scorecard";
import { assembleInputs, missingOf, PART_NAMES, type PartRead } from "../lib/credit-score/batch";
import * as f from "../lib/fields";
import { activityPseudonym } from "../lib/base-c/subject";

/**
 * Each part the scorecard reads (lib/credit-score/inputs.ts): the base action that answers it in one
 * query, and how its answer becomes the part. Base C's parts are asked by pseudonym (`bySubject`:
 * base-c never sees a CPF). A Base C without activity.consultationStats (an older node during a
 * rolling update) leaves the consultations part missing as `not_supported`.
 */
const PARTS: Record<PartName, { action: string; bySubject?: true; read(answer: any): ScoreInputs[PartName] }> = {
	debts: { action: "cpf-lookup.debtSummary", read: a => a },
	assets: { action: "asset-score.get", read: a => ({ score: a.score, band: a.band }) },
	movements: { action: "activity.movementStats", bySubject: true, read: a => a },
	consultations: { action: "activity.consultationStats", bySubject: true, read: a => ({ consultations90d: a.consultations90d, distinctConsumers90d: a.distinctConsumers90d }) }
};

/** A base that has not answered in this time is down for this score: its part is missing. */
const PART_TIMEOUT_MS = 3000;
/** Keeping the score must not hold the answer up for long either. */
const RECORD_TIMEOUT_MS = 2000;
const unavailableError = () => Object.assign(new Error("No base could answer; try again later"), { code: 503, type: "BASE_UNAVAILABLE", name: "BaseUnavailableError", data: { retryAfter: 5 } });

interface CreditScoreMethods {
	/** The answers of one chunk of a batch: the set-based reads and the scores. */
	scoreChunk(cpfs: string[], run: BatchRun): Promise<BatchAnswer[]>;
	/** Keeps a chunk's scores, once audited, like the single score's: best effort. */
	keepScores(lines: BatchAnswer[], run: BatchRun): Promise<void>;
}

type CreditScoreThis = CreditScoreMethods & BatchThis & {
	logger: Service["logger"];
	pii: { blindIndex(cpf: string): string };
	/** A person's key in Base C (lib/base-c/subject.ts). */
	activitySubject: (cpf: string) => string;
};

/**
 * The bureau score of a CPF, 0–1000, from all three bases (docs/credit-score.md): the parts are read
 * in parallel with short timeouts, a part that cannot be read takes the scorecard's neutral points and
 * is named in `missing`, and every computed score is kept in Base B (score-history). Nothing known
 * anywhere is a 404; no base answering is a 503. One score is one consultation. `batch` does the same
 * for up to 10 000 CPFs, set-based per chunk, streamed as NDJSON.
 */
const CreditScoreService: ServiceSchema<ServiceSettingSchema, CreditScoreMethods, CreditScoreThis & { pii: { blindIndex(cpf: string): string } }> = {
	name: "credit-score",
	mixins: [BatchMixin],

	created() {
		// The audit row is filed under the CPF's blind index; this service opens no sealed field.
		this.pii = { blindIndex: blindIndexer(need(config, "blindIndexKey")) };
		this.activitySubject = activityPseudonym();
	},

	actions: {
		get: {
			callers: ["api"], scopes: ["score:read"], audit: true, consultation: true,
			params: { $$strict: true, cpf: f.cpf },
			async handler(ctx: Context<{ cpf: string }, MeshMeta, MeshLocals>) {
				const { cpf } = ctx.params;
				const reads = Object.fromEntries(await Promise.all(PART_NAMES.map(async (name): Promise<[PartName, PartRead]> => {
					try {
						const params = PARTS[name].bySubject ? { subject: this.activitySubject(cpf) } : { cpf };
						return [name, { ok: true, part: PARTS[name].read(await ctx.call(PARTS[name].action, params, { timeout: PART_TIMEOUT_MS, retries: 0 })) }];
					} catch (err) {
						return [name, { ok: false, reason: missingOf(err) }];
					}
				}))) as Record<PartName, PartRead>;
				const assembled = assembleInputs(reads);
				if (assembled.status !== "ok") throw assembled.status === "unavailable" ? unavailableError() : new NotFoundError("Person");
				const score: CreditScore = scoreCredit(assembled.inputs);
				const recorded = await ctx.call("score-history.record", { cpf, score }, { timeout: RECORD_TIMEOUT_MS, retries: 0 }).then(() => true, (err: Thrown) => {
					this.logger.warn("Credit score not kept in the history:", err?.name);
					return false;
				});
				return { cpf, ...score, recorded };
			}
		},

		/**
		 * POST /scores/batch: up to BATCH_MAX_CPFS CPFs (a JSON array or NDJSON), answered as NDJSON in
		 * input order, one line per CPF with its status, chunk by chunk as they are scored (BatchMixin:
		 * the same piece as POST /reports/batch). One row for the act; per chunk one query per base, one
		 * audit row per CPF (one INSERT), one consultation per scored CPF (one message). A base down marks
		 * the parts it owns, never the stream.
		 */
		batch: {
			callers: ["api"], scopes: ["score:read"], consultation: "batch", audit: { before: "started", outcome: () => null },
			// The gateway passes the raw body (mergeParams off): an array or NDJSON text.
			params: { body: { type: "any" } },
			handler(ctx: Context<{ body: unknown }, MeshMeta, MeshLocals>) {
				return this.streamBatch(ctx, { answer: (cpfs, run) => this.scoreChunk(cpfs, run), audited: (lines, run) => this.keepScores(lines, run) });
			}
		}
	},

	methods: {
		async scoreChunk(cpfs: string[], run: BatchRun): Promise<BatchAnswer[]> {
			const [debts, assets, stats] = await Promise.all([
				this.readMany(run, "cpf-lookup.debtSummaryMany", cpfs),
				this.readMany(run, "asset-score.getMany", cpfs),
				this.readMany(run, "activity.scoreStatsMany", cpfs, c => ({ subjects: c.map(cpf => this.activitySubject(cpf)) }))
			]);
			const part = (r: ManyRead, i: number, pick: (v: any) => unknown): PartRead => {
				if (!r.ok) return { ok: false, reason: missingOf(r.error) };
				const v = r.values[i];
				return v === null || v === undefined ? { ok: false, reason: "not_found" } : { ok: true, part: pick(v) as ScoreInputs[PartName] };
			};
			return cpfs.map((_, i) => {
				const assembled = assembleInputs({
					debts: part(debts, i, v => v), assets: part(assets, i, v => v),
					movements: part(stats, i, v => v.movements), consultations: part(stats, i, v => v.consultations)
				});
				return assembled.status === "ok" ? { status: "ok", score: scoreCredit(assembled.inputs) } : { status: assembled.status };
			});
		},

		async keepScores(lines: (BatchAnswer & { cpf?: string })[], run: BatchRun): Promise<void> {
			const scored = lines.filter(l => l.status === "ok").map(l => ({ cpf: l.cpf!, score: l.score as CreditScore }));
			// Kept like the single score's, best effort; a Base B found down is not waited for again soon.
			const history = "score-history.recordMany";
			if (scored.length === 0 || (run.down.get(history) ?? 0) > Date.now()) return;
			await run.ctx.call(history, { scores: scored }, { timeout: CHUNK_TIMEOUT_MS, retries: 0, meta: run.meta }).catch((err: Thrown) => {
				run.down.set(history, Date.now() + 2000);
				this.logger.warn("Batch scores not kept in the history:", err?.name);
			});
		}
	}
};

// Checked above against its own `this`; handed over as Moleculer takes a schema, untyped (types/mixin.ts).
export default CreditScoreService as unknown as ServiceSchema;
