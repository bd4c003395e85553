import { Readable } from "node:stream";
import type { Context } from "moleculer";
import { Errors } from "moleculer";
import { config, need } from "../config";
import { BATCH_LIMIT, type BatchStatus, chunks, parseBatch } from "../lib/batch";
import { BaseUnavailableError, type Thrown, tooManyItems } from "../lib/errors";
import { blindIndexer } from "../lib/pii";
import { appendAuditMany } from "../middlewares/audit.middleware";
import { publishConsultations } from "../middlewares/consultation.middleware";
import type { MeshLocals, MeshMeta } from "../middlewares/zero-trust.middleware";
import type { Mixin, MixinSchema } from "../types/mixin";

/**
 * A base that has not answered a chunk of a batch in this time is down for that chunk. A stopped base
 * fails at once; this bounds a frozen one. On FerretDB v1 a chunk's `$in` scans the whole profiles
 * collection (docs/batch.md): 3–4.5 s for 10 000 profiles on the shared 2-core machine, two of them at
 * once for a report, so 10 s left parts unavailable under load.
 */
export const CHUNK_TIMEOUT_MS = 20_000;
/** A base that could not answer a chunk is not asked again for this long within the batch: its parts are unavailable meanwhile. */
const RETRY_DOWN_BASE_MS = 2000;

/**
 * What every call of one batch carries: the caller token, kept from the start (the zero-trust middleware
 * takes it off the context's meta once the handler has returned the stream), and until when each base
 * action is taken as down.
 */
export interface BatchRun {
	ctx: Context<unknown, MeshMeta, MeshLocals>;
	meta: { callerToken?: string };
	down: Map<string, number>;
}

/** A valid CPF's answer in a batch: its status and the fields its line carries (`score`, `report`…). */
export type BatchAnswer = { status: Exclude<BatchStatus, "invalid"> } & Record<string, unknown>;

/** One line of a batch's NDJSON answer: position in the input, the CPF (as sent when invalid), status, fields. */
export type BatchLine = { index: number; cpf: string | null; status: BatchStatus } & Record<string, unknown>;

/** A chunk's read of one base: per CPF its answer (null: not known there), or the error that failed the whole chunk. */
export type ManyRead = { ok: true; values: unknown[] } | { ok: false; error: unknown };

/** What a batch route gives streamBatch: how one chunk of valid CPFs is answered, and what follows once it is audited. */
export interface BatchRoute {
	answer(cpfs: string[], run: BatchRun): Promise<BatchAnswer[]>;
	/** After the chunk's audit rows and consultations exist (e.g. keeping the scores); best effort, never fails or holds up a line. */
	audited?(lines: (BatchAnswer & { cpf: string })[], run: BatchRun): Promise<void>;
}

/** What BatchMixin adds to `this`. */
export interface BatchThis {
	/** The NDJSON answer of a batch action (declared `consultation: "batch"`), chunk by chunk (docs/batch.md). */
	streamBatch(ctx: Context<{ body: unknown }, MeshMeta, MeshLocals>, route: BatchRoute): Readable;
	/** One set-based read of a chunk: `action` with `{ cpfs, ...params }`, or the chunk's error (a base found down is not asked again soon). */
	/** One call for a chunk: `params` makes its parameters from the CPFs (default `{ cpfs }`; Base C's take pseudonyms). */
	readMany(run: BatchRun, action: string, cpfs: string[], params?: (cpfs: string[]) => object): Promise<ManyRead>;
}

const noCpf = () => new Errors.MoleculerClientError("Send a JSON array of CPFs, or NDJSON with one CPF (or {\"cpf\": …}) per line", 422, "VALIDATION_ERROR", [{ field: "body", type: "required", message: "No CPF in the body" }]);

/**
 * The one piece behind every batch route (POST /scores/batch, POST /reports/batch): the body's CPFs (a
 * JSON array or NDJSON, at most BATCH_MAX_CPFS, else 413; none, 422), answered as NDJSON in input order,
 * chunk by chunk as each is done. Per chunk: the route's set-based reads (readMany: one call per base,
 * one query each), then one audit row per valid CPF in one INSERT and one consultations message for the
 * `ok` ones, both before the chunk's lines leave; a chunk whose rows cannot be written is `unavailable`.
 * The next chunk's reads run while a chunk is audited and sent (one chunk ahead, no more); the route's
 * follow-up of a chunk (the scores' history) runs while the next one is read, one at a time.
 */
export const BatchMixin = {
	created() {
		// Audit rows are filed under the CPF's blind index; this mixin opens no sealed field.
		this.batchBlindIndex = blindIndexer(need(config, "blindIndexKey"));
	},

	methods: {
		streamBatch(ctx: Context<{ body: unknown }, MeshMeta, MeshLocals>, route: BatchRoute): Readable {
			const { cpfs, given, tooMany } = parseBatch(ctx.params.body);
			if (tooMany) throw tooManyItems(BATCH_LIMIT);
			if (cpfs.length === 0) throw noCpf();
			// The stream outlives the request's deadline (REQUEST_TIMEOUT_MS, which its calls would inherit):
			// each chunk's calls have their own timeouts instead, so a batch is bounded chunk by chunk.
			ctx.options.timeout = 0;
			const run: BatchRun = { ctx, meta: { callerToken: ctx.meta.callerToken }, down: new Map() };
			const blindIndex = (this as unknown as { batchBlindIndex(cpf: string): string }).batchBlindIndex;
			const logger = this.logger;
			/** Where a chunk's time went (ms), logged at debug level: the profile docs/batch.md reads. */
			const took = { reads: 0, audit: 0, after: 0, serialise: 0 };
			const since = (t: bigint) => Number(process.hrtime.bigint() - t) / 1e6;
			/** A chunk's set-based reads: the route's answers for its valid CPFs. */
			const read = (items: (string | null)[]): Promise<BatchAnswer[]> => {
				const valid = items.filter((c): c is string => c !== null);
				return valid.length > 0 ? route.answer(valid, run) : Promise.resolve([]);
			};
			/** The follow-up of the last audited chunk (BatchRoute.audited), if any. */
			let after: Promise<void> = Promise.resolve();
			/** A chunk's lines from its answers, once its audit rows and consultations exist. */
			async function chunkLines(start: number, items: (string | null)[], answers: BatchAnswer[]): Promise<BatchLine[]> {
				let k = 0;
				const lines: BatchLine[] = items.map((cpf, j) => (cpf === null ? { index: start + j, cpf: given[start + j], status: "invalid" } : { index: start + j, cpf, ...answers[k++] }));
				const answered = lines.filter((l): l is BatchLine & BatchAnswer & { cpf: string } => l.status !== "invalid");
				const t = process.hrtime.bigint();
				try {
					// No answer leaves before its audit row exists; the consultations are stored with it.
					await Promise.all([
						appendAuditMany(ctx, answered.map(l => ({ cpfBidx: blindIndex(l.cpf), outcome: l.status })), run.meta),
						publishConsultations(ctx, answered.filter(l => l.status === "ok").map(l => l.cpf))
					]);
				} catch (err) {
					logger.warn("Batch chunk not audited; its lines are unavailable:", (err as Thrown)?.name);
					return lines.map(l => (l.status === "invalid" ? l : { index: l.index, cpf: l.cpf, status: "unavailable" }));
				}
				took.audit = since(t);
				// What follows the audit (the scores' history) is best effort and not in the lines: it runs while the
				// next chunk is read, one at a time, and the stream ends only once the last one is done.
				if (route.audited) {
					const previous = after;
					after = (async () => {
						await previous;
						const t0 = process.hrtime.bigint();
						await route.audited!(answered, run).catch((err: Thrown) => logger.warn("Batch chunk's follow-up failed:", err?.name));
						took.after = since(t0);
					})();
				}
				return lines;
			}
			async function* ndjson() {
				const list = [...chunks(cpfs)];
				// The next chunk is read while this one is audited and sent: its lines still leave after its own rows.
				let ahead: Promise<BatchAnswer[]> | null = read(list[0].items);
				for (let c = 0; c < list.length; c++) {
					const { start, items } = list[c];
					let t = process.hrtime.bigint();
					const answers = await ahead!;
					took.reads = since(t);
					ahead = c + 1 < list.length ? read(list[c + 1].items) : null;
					// A client gone mid-batch leaves the read ahead unawaited: it must not be an unhandled rejection.
					ahead?.catch(() => undefined);
					const lines = await chunkLines(start, items, answers);
					t = process.hrtime.bigint();
					const text = lines.map(l => JSON.stringify(l)).join("\n") + "\n";
					took.serialise = since(t);
					logger.debug(`Batch chunk at ${start} (${items.length} CPFs), ms: reads ${took.reads.toFixed(0)}, audit and consultations ${took.audit.toFixed(0)}, after ${took.after.toFixed(0)}, serialise ${took.serialise.toFixed(1)}`);
					yield text;
				}
				await after;
			}
			ctx.meta.$responseType = "application/x-ndjson";
			return Readable.from(ndjson(), { objectMode: false, highWaterMark: 64 * 1024 });
		},

		async readMany(run: BatchRun, action: string, cpfs: string[], params: (cpfs: string[]) => object = c => ({ cpfs: c })): Promise<ManyRead> {
			if (cpfs.length === 0) return { ok: true, values: [] };
			if ((run.down.get(action) ?? 0) > Date.now()) return { ok: false, error: new BaseUnavailableError(action.split(".")[0]) };
			try {
				const values = await run.ctx.call(action, params(cpfs), { timeout: CHUNK_TIMEOUT_MS, retries: 0, meta: run.meta }) as unknown[];
				return { ok: true, values };
			} catch (error) {
				if ((error as Thrown)?.type !== "NOT_FOUND" && (error as Thrown)?.name !== "ServiceNotFoundError") run.down.set(action, Date.now() + RETRY_DOWN_BASE_MS);
				return { ok: false, error };
			}
		}
	}
} satisfies MixinSchema<BatchThis & { batchBlindIndex(cpf: string): string }> as unknown as Mixin;
