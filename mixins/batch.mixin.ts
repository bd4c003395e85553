import { Readable } from "node:stream";
import type { Context } from "moleculer";
import { Errors } from "moleculer";
import { config, need } from "../config";
import { BATCH_MAX_CPFS, type BatchStatus, chunks, parseBatch } from "../lib/batch";
import { BaseUnavailableError, type Thrown } from "../lib/errors";
import { blindIndexer } from "../lib/pii";
import { appendAuditMany } from "../middlewares/audit.middleware";
import { publishConsultations } from "../middlewares/consultation.middleware";
import type { MeshLocals, MeshMeta } from "../middlewares/zero-trust.middleware";
import type { Mixin, MixinSchema } from "../types/mixin";

/** A base that has not answered a chunk of a batch in this time is down for that chunk. */
export const CHUNK_TIMEOUT_MS = 10_000;
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
	/** After the chunk's audit rows and consultations exist (e.g. keeping the scores); best effort, never fails a line. */
	audited?(lines: (BatchAnswer & { cpf: string })[], run: BatchRun): Promise<void>;
}

/** What BatchMixin adds to `this`. */
export interface BatchThis {
	/** The NDJSON answer of a batch action (declared `consultation: "batch"`), chunk by chunk (docs/batch.md). */
	streamBatch(ctx: Context<{ body: unknown }, MeshMeta, MeshLocals>, route: BatchRoute): Readable;
	/** One set-based read of a chunk: `action` with `{ cpfs, ...params }`, or the chunk's error (a base found down is not asked again soon). */
	readMany(run: BatchRun, action: string, cpfs: string[], params?: object): Promise<ManyRead>;
}

const noCpf = () => new Errors.MoleculerClientError("Send a JSON array of CPFs, or NDJSON with one CPF (or {\"cpf\": …}) per line", 422, "VALIDATION_ERROR", [{ field: "body", type: "required", message: "No CPF in the body" }]);

/**
 * The one piece behind every batch route (POST /scores/batch, POST /reports/batch): the body's CPFs (a
 * JSON array or NDJSON, at most BATCH_MAX_CPFS, else 413; none, 422), answered as NDJSON in input order,
 * chunk by chunk as each is done. Per chunk: the route's set-based reads (readMany: one call per base,
 * one query each), then one audit row per valid CPF in one INSERT and one consultations message for the
 * `ok` ones, both before the chunk's lines leave; a chunk whose rows cannot be written is `unavailable`.
 */
export const BatchMixin = {
	created() {
		// Audit rows are filed under the CPF's blind index; this mixin opens no sealed field.
		this.batchBlindIndex = blindIndexer(need(config, "blindIndexKey"));
	},

	methods: {
		streamBatch(ctx: Context<{ body: unknown }, MeshMeta, MeshLocals>, route: BatchRoute): Readable {
			const { cpfs, given, tooMany } = parseBatch(ctx.params.body);
			if (tooMany) throw new Errors.MoleculerClientError(`At most ${BATCH_MAX_CPFS} CPFs per batch`, 413, "TOO_MANY_CPFS", { max: BATCH_MAX_CPFS });
			if (cpfs.length === 0) throw noCpf();
			// The stream outlives the request's deadline (REQUEST_TIMEOUT_MS, which its calls would inherit):
			// each chunk's calls have their own timeouts instead, so a batch is bounded chunk by chunk.
			ctx.options.timeout = 0;
			const run: BatchRun = { ctx, meta: { callerToken: ctx.meta.callerToken }, down: new Map() };
			const blindIndex = (this as unknown as { batchBlindIndex(cpf: string): string }).batchBlindIndex;
			const logger = this.logger;
			async function chunkLines(start: number, items: (string | null)[]): Promise<BatchLine[]> {
				const valid = items.filter((c): c is string => c !== null);
				const answers = valid.length > 0 ? await route.answer(valid, run) : [];
				let k = 0;
				const lines: BatchLine[] = items.map((cpf, j) => (cpf === null ? { index: start + j, cpf: given[start + j], status: "invalid" } : { index: start + j, cpf, ...answers[k++] }));
				const answered = lines.filter((l): l is BatchLine & BatchAnswer & { cpf: string } => l.status !== "invalid");
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
				if (route.audited) await route.audited(answered, run);
				return lines;
			}
			async function* ndjson() {
				for (const { start, items } of chunks(cpfs)) {
					const lines = await chunkLines(start, items);
					yield lines.map(l => JSON.stringify(l)).join("\n") + "\n";
				}
			}
			ctx.meta.$responseType = "application/x-ndjson";
			return Readable.from(ndjson(), { objectMode: false, highWaterMark: 64 * 1024 });
		},

		async readMany(run: BatchRun, action: string, cpfs: string[], params: object = {}): Promise<ManyRead> {
			if (cpfs.length === 0) return { ok: true, values: [] };
			if ((run.down.get(action) ?? 0) > Date.now()) return { ok: false, error: new BaseUnavailableError(action.split(".")[0]) };
			try {
				const values = await run.ctx.call(action, { ...params, cpfs }, { timeout: CHUNK_TIMEOUT_MS, retries: 0, meta: run.meta }) as unknown[];
				return { ok: true, values };
			} catch (error) {
				if ((error as Thrown)?.type !== "NOT_FOUND" && (error as Thrown)?.name !== "ServiceNotFoundError") run.down.set(action, Date.now() + RETRY_DOWN_BASE_MS);
				return { ok: false, error };
			}
		}
	}
} satisfies MixinSchema<BatchThis & { batchBlindIndex(cpf: string): string }> as unknown as Mixin;
