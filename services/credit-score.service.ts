import { Readable } from "node:stream";
import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { Errors } from "moleculer";
import type { MeshLocals, MeshMeta } from "../middlewares/zero-trust.middleware";
import { appendAuditMany } from "../middlewares/audit.middleware";
import { publishConsultations } from "../middlewares/consultation.middleware";
import { config, need } from "../config";
import { blindIndexer } from "../lib/pii";
import { NotFoundError, type Thrown } from "../lib/errors";
import type { PartName, ScoreInputs } from "../lib/credit-score/inputs";
import { type CreditScore, scoreCredit } from "../lib/credit-score/scorecard";
import { assembleInputs, BATCH_MAX_CPFS, type BatchStatus, chunks, missingOf, PART_NAMES, type PartRead, parseBatch } from "../lib/credit-score/batch";
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
/** A base that has not answered a chunk of a batch in this time is down for that chunk. */
const CHUNK_TIMEOUT_MS = 10_000;

/** One line of POST /scores/batch (docs/credit-score.md, "Batch"). */
interface BatchLine { index: number; cpf: string | null; status: BatchStatus; score?: CreditScore }

const unavailableError = () => Object.assign(new Error("No base could answer; try again later"), { code: 503, type: "BASE_UNAVAILABLE", name: "BaseUnavailableError", data: { retryAfter: 5 } });

interface CreditScoreThis {
	pii: { blindIndex(cpf: string): string };
	/** A person's key in Base C (lib/base-c/subject.ts). */
	activitySubject: (cpf: string) => string;
	/** The lines of one chunk of a batch: the set-based reads, scores, audit rows, consultations and history. */
	scoreChunk(ctx: Context<unknown, MeshMeta, MeshLocals>, start: number, cpfs: (string | null)[], given: (string | null)[], batch: BatchState): Promise<BatchLine[]>;
}

/** A base that could not answer a chunk is not asked again for this long within the batch: its parts are unavailable meanwhile. */
const RETRY_DOWN_BASE_MS = 2000;

/** Per batch: until when each base action is taken as down. */
type DownUntil = Map<string, number>;

/**
 * What every call of a batch carries: the caller token, kept from the start (the zero-trust middleware
 * takes it off the context's meta once the handler has returned the stream), and the down bases.
 */
interface BatchState { meta: { callerToken?: string }; down: DownUntil }

/**
 * A chunk's reads of one base: per CPF its answer, or the whole chunk's missing reason. `params` makes the
 * call's parameters from the chunk's CPFs (Base C's take their pseudonyms).
 */
async function readMany(ctx: Context, action: string, cpfs: string[], { meta, down }: BatchState, params: (cpfs: string[]) => object = c => ({ cpfs: c })): Promise<{ ok: true; values: unknown[] } | { ok: false; reason: PartRead & { ok: false } }> {
	if (cpfs.length === 0) return { ok: true, values: [] };
	if ((down.get(action) ?? 0) > Date.now()) return { ok: false, reason: { ok: false, reason: "unavailable" } };
	try {
		const values = await ctx.call(action, params(cpfs), { timeout: CHUNK_TIMEOUT_MS, retries: 0, meta }) as unknown[];
		return { ok: true, values };
	} catch (err) {
		const reason = missingOf(err);
		if (reason === "unavailable") down.set(action, Date.now() + RETRY_DOWN_BASE_MS);
		return { ok: false, reason: { ok: false, reason } };
	}
}

/**
 * The bureau score of a CPF, 0–1000, from all three bases (docs/credit-score.md): the parts are read
 * in parallel with short timeouts, a part that cannot be read takes the scorecard's neutral points and
 * is named in `missing`, and every computed score is kept in Base B (score-history). Nothing known
 * anywhere is a 404; no base answering is a 503. One score is one consultation. `batch` does the same
 * for up to 10 000 CPFs, set-based per chunk, streamed as NDJSON.
 */
const CreditScoreService: ServiceSchema<ServiceSettingSchema, Pick<CreditScoreThis, "scoreChunk">, CreditScoreThis> = {
	name: "credit-score",

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
		 * input order, one line per CPF with its status, chunk by chunk as they are scored. One row for the
		 * act; per chunk one query per base, one audit row per CPF (one INSERT), one consultation per
		 * scored CPF (one message). A base down marks the parts it owns, never the stream.
		 */
		batch: {
			callers: ["api"], scopes: ["score:read"], consultation: "batch", audit: { before: "started", outcome: () => null },
			// The gateway passes the raw body (mergeParams off): an array or NDJSON text.
			params: { body: { type: "any" } },
			async handler(ctx: Context<{ body: unknown }, MeshMeta, MeshLocals>) {
				const { cpfs, given, tooMany } = parseBatch(ctx.params.body);
				if (tooMany) throw new Errors.MoleculerClientError(`At most ${BATCH_MAX_CPFS} CPFs per batch`, 413, "TOO_MANY_CPFS", { max: BATCH_MAX_CPFS });
				if (cpfs.length === 0) throw new Errors.MoleculerClientError("Send a JSON array of CPFs, or NDJSON with one CPF (or {\"cpf\": …}) per line", 422, "VALIDATION_ERROR", [{ field: "body", type: "required", message: "No CPF in the body" }]);
				// The stream outlives the request's deadline (REQUEST_TIMEOUT_MS, which its calls would inherit):
				// each chunk's calls have their own timeouts instead, so a batch is bounded chunk by chunk.
				ctx.options.timeout = 0;
				const state: BatchState = { meta: { callerToken: ctx.meta.callerToken }, down: new Map() };
				const lines = async function* (this: CreditScoreThis) {
					for (const chunk of chunks(cpfs)) {
						const out = await this.scoreChunk(ctx, chunk.start, chunk.items, given.slice(chunk.start, chunk.start + chunk.items.length), state);
						yield out.map(line => `${JSON.stringify(line)}\n`).join("");
					}
				};
				ctx.meta.$responseType = "application/x-ndjson";
				return Readable.from(lines.call(this), { objectMode: false, highWaterMark: 64 * 1024 });
			}
		}
	},

	methods: {
		async scoreChunk(ctx: Context<unknown, MeshMeta, MeshLocals>, start: number, cpfs: (string | null)[], given: (string | null)[], batch: BatchState) {
			const valid = cpfs.filter((c): c is string => c !== null);
			const [debts, assets, stats] = await Promise.all([
				readMany(ctx, "cpf-lookup.debtSummaryMany", valid, batch),
				readMany(ctx, "asset-score.getMany", valid, batch),
				readMany(ctx, "activity.scoreStatsMany", valid, batch, c => ({ subjects: c.map(cpf => this.activitySubject(cpf)) }))
			]);
			const part = (r: Awaited<ReturnType<typeof readMany>>, i: number, pick: (v: any) => unknown): PartRead => {
				if (!r.ok) return r.reason;
				const v = r.values[i];
				return v === null || v === undefined ? { ok: false, reason: "not_found" } : { ok: true, part: pick(v) as ScoreInputs[PartName] };
			};
			let k = 0;
			const lines: BatchLine[] = cpfs.map((cpf, j) => {
				const index = start + j;
				if (cpf === null) return { index, cpf: given[j], status: "invalid" };
				const i = k++;
				const assembled = assembleInputs({
					debts: part(debts, i, v => v), assets: part(assets, i, v => v),
					movements: part(stats, i, v => v.movements), consultations: part(stats, i, v => v.consultations)
				});
				return assembled.status === "ok" ? { index, cpf, status: "ok", score: scoreCredit(assembled.inputs) } : { index, cpf, status: assembled.status };
			});
			const answered = lines.filter((l): l is BatchLine & { cpf: string } => l.status !== "invalid");
			try {
				// No answer leaves before its audit row exists; the consultations are stored with it.
				await Promise.all([
					appendAuditMany(ctx, answered.map(l => ({ cpfBidx: this.pii.blindIndex(l.cpf), outcome: l.status })), batch.meta),
					publishConsultations(ctx, answered.filter(l => l.status === "ok").map(l => l.cpf))
				]);
			} catch (err) {
				this.logger.warn("Batch chunk not audited; its lines are unavailable:", (err as Thrown)?.name);
				return lines.map(l => (l.status === "invalid" ? l : { index: l.index, cpf: l.cpf, status: "unavailable" }));
			}
			const scored = lines.filter(l => l.status === "ok").map(l => ({ cpf: l.cpf!, score: l.score! }));
			// Kept like the single score's, best effort; a Base B found down is not waited for again soon.
			const history = "score-history.recordMany";
			if (scored.length > 0 && (batch.down.get(history) ?? 0) <= Date.now()) {
				await ctx.call(history, { scores: scored }, { timeout: CHUNK_TIMEOUT_MS, retries: 0, meta: batch.meta }).catch((err: Thrown) => {
					batch.down.set(history, Date.now() + RETRY_DOWN_BASE_MS);
					this.logger.warn("Batch scores not kept in the history:", err?.name);
				});
			}
			return lines;
		}
	}
};

// Checked above against its own `this`; handed over as Moleculer takes a schema, untyped (types/mixin.ts).
export default CreditScoreService as unknown as ServiceSchema;
