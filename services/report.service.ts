import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import * as f from "../lib/fields";
import { activityPseudonym } from "../lib/base-c/subject";
import { classify, type Thrown } from "../lib/errors";
import type { MeshLocals, MeshMeta } from "../middlewares/zero-trust.middleware";
import { type BatchAnswer, BatchMixin, type BatchRun, type BatchThis } from "../mixins/batch.mixin";

/**
 * Each part of a report: the action that answers it and the scope that allows it. Base C is asked by
 * pseudonym (`bySubject`: base-c never sees a CPF), and the CPF put back in its part's data.
 */
const PARTS: Record<"baseA" | "baseB" | "score" | "baseC", { action: string; scope: string; bySubject?: true }> = {
	baseA: { action: "cpf-lookup.get", scope: "persons:read" },
	baseB: { action: "profiles.get", scope: "profiles:read" },
	score: { action: "asset-score.get", scope: "score:read" },
	baseC: { action: "activity.get", scope: "activity:read", bySubject: true }
};

interface ReportThis {
	/** A person's key in Base C (lib/base-c/subject.ts). */
	activitySubject: (cpf: string) => string;
}

/**
 * For a chunk of a batch, the one read per base and how each part comes out of its answer (null where
 * the person is not known): Base B answers payload B and the asset score from one `$in` (profiles.getMany).
 */
const MANY = [
	{ action: "cpf-lookup.getMany", parts: { baseA: (v: any) => v } },
	{ action: "profiles.getMany", parts: { baseB: (v: any) => v.profile, score: (v: any) => v.score }, param: { baseB: "profile", score: "score" } },
	// By pseudonym: base-c never sees a CPF; the CPF is put back in the part, as the single report does.
	{ action: "activity.getMany", parts: { baseC: (v: any) => v }, bySubject: true }
] as const satisfies { action: string; parts: Partial<Record<PartName, (v: any) => unknown>>; param?: Partial<Record<PartName, string>>; bySubject?: true }[];

type PartName = keyof typeof PARTS;
export type Part =
	| { status: "ok"; data: unknown }
	| { status: "not_found" | "forbidden" }
	| { status: "unavailable" | "error"; reason: string };

/** What became of one part: found, absent, not allowed, or a base that could not answer (and why, without details). */
function partOf(err: unknown): Part {
	const { outcome } = classify(err);
	const e = err as Thrown;
	if (outcome === "not_found" && e?.type === "NOT_FOUND") return { status: "not_found" };
	if (outcome === "forbidden") return { status: "forbidden" };
	if (outcome === "unavailable") return { status: "unavailable", reason: e?.type ?? e?.name ?? "UNAVAILABLE" };
	return { status: "error", reason: e?.type ?? "INTERNAL_ERROR" };
}

/**
 * A person's whole picture — Base A, Base B, the score and Base C — gathered in parallel, limited to
 * the parts the caller's scopes allow. A base that is down does not sink the report: its part says
 * `unavailable` and `complete` is false. One report is one consultation.
 */
interface ReportMethods {
	/** The answers of one chunk of POST /reports/batch: one read per allowed base, a report per CPF. */
	reportChunk(cpfs: string[], run: BatchRun): Promise<BatchAnswer[]>;
}

/** The line of a batch from a CPF's parts: `ok` with the report when a part was read, else why nothing was. */
function batchAnswer(parts: Record<PartName, Part>): BatchAnswer {
	const { allowed, unavailable } = tally(Object.entries(parts) as [PartName, Part][]);
	if (allowed.length > 0 && !allowed.some(([, p]) => p.status === "ok")) return { status: unavailable.length > 0 ? "unavailable" : "not_found" };
	return { status: "ok", report: { complete: unavailable.length === 0, ...parts } };
}

/** The parts the caller may see, and those of them whose base could not answer. */
function tally(entries: [PartName, Part][]) {
	const allowed = entries.filter(([, p]) => p.status !== "forbidden");
	return { allowed, unavailable: allowed.filter(([, p]) => p.status === "unavailable" || p.status === "error") };
}

const ReportService: ServiceSchema<ServiceSettingSchema, ReportMethods, ReportMethods & BatchThis & ReportThis> = {
	name: "report",
	mixins: [BatchMixin],

	actions: {
		get: {
			// One report is one consultation; its parts, called by this group, are not counted again.
			callers: ["api"], scopes: ["reports:read"], consultation: true,
			params: { $$strict: true, cpf: f.cpf },
			async handler(ctx: Context<{ cpf: string }, MeshMeta, MeshLocals>) {
				const { cpf } = ctx.params;
				const scopes = ctx.locals.caller?.scopes ?? [];
				const entries = await Promise.all(
					(Object.entries(PARTS) as [PartName, (typeof PARTS)[PartName]][]).map(async ([name, part]): Promise<[PartName, Part]> => {
						if (!scopes.includes(part.scope)) return [name, { status: "forbidden" }];
						try {
							if (!part.bySubject) return [name, { status: "ok", data: await ctx.call(part.action, { cpf }, { timeout: 5000, retries: 1 }) }];
							const data = await ctx.call<object, { subject: string }>(part.action, { subject: this.activitySubject(cpf) }, { timeout: 5000, retries: 1 });
							return [name, { status: "ok", data: { cpf, ...data } }];
						} catch (err) {
							return [name, partOf(err)];
						}
					})
				);
				const parts = Object.fromEntries(entries) as Record<PartName, Part>;
				const { allowed, unavailable } = tally(entries);
				if (allowed.length > 0 && unavailable.length === allowed.length) {
					// Nothing could be read at all: that is an outage, not a report.
					throw Object.assign(new Error("No base could answer; try again later"), { code: 503, type: "BASE_UNAVAILABLE", name: "BaseUnavailableError", data: { retryAfter: 5 } });
				}
				return { cpf, complete: unavailable.length === 0, ...parts };
			}
		},

		/**
		 * POST /reports/batch: the report of up to BATCH_MAX_CPFS CPFs, streamed as NDJSON in input order
		 * (BatchMixin, the same piece as POST /scores/batch). Per chunk one query per allowed base; a base
		 * down marks its parts as `get` does. Every CPF is audited under `report.batch`; every `ok` one is
		 * a consultation with the stated purpose.
		 */
		batch: {
			callers: ["api"], scopes: ["reports:read"], consultation: "batch", audit: { before: "started", outcome: () => null },
			// The gateway passes the raw body (mergeParams off): an array or NDJSON text.
			params: { body: { type: "any" } },
			handler(ctx: Context<{ body: unknown }, MeshMeta, MeshLocals>) {
				return this.streamBatch(ctx, { answer: (cpfs, run) => this.reportChunk(cpfs, run) });
			}
		}
	},

	methods: {
		async reportChunk(cpfs: string[], run: BatchRun): Promise<BatchAnswer[]> {
			const scopes: readonly string[] = run.ctx.locals.caller?.scopes ?? [];
			const parts = {} as Record<PartName, (i: number) => Part>;
			await Promise.all(MANY.map(async ({ action, parts: pick, ...rest }) => {
				const names = (Object.keys(pick) as PartName[]).filter(name => scopes.includes(PARTS[name].scope));
				for (const name of Object.keys(pick) as PartName[]) if (!names.includes(name)) parts[name] = () => ({ status: "forbidden" });
				if (names.length === 0) return;
				const param = "param" in rest ? { parts: names.map(name => (rest.param as Record<string, string>)[name]) } : {};
				const bySubject = "bySubject" in rest;
				const read = await this.readMany(run, action, cpfs, bySubject ? c => ({ subjects: c.map(cpf => this.activitySubject(cpf)) }) : c => ({ ...param, cpfs: c }));
				for (const name of names) {
					parts[name] = (i: number): Part => {
						if (!read.ok) return partOf(read.error);
						const value = bySubject && read.values[i] ? { cpf: cpfs[i], ...(read.values[i] as object) } : read.values[i];
						const data = value === null || value === undefined ? undefined : (pick as Record<string, (v: unknown) => unknown>)[name](value);
						return data === undefined ? { status: "not_found" } : { status: "ok", data };
					};
				}
			}));
			return cpfs.map((_, i) => batchAnswer({ baseA: parts.baseA(i), baseB: parts.baseB(i), score: parts.score(i), baseC: parts.baseC(i) }));
		}
	},

	created() {
		this.activitySubject = activityPseudonym();
	}
};

// Checked above against its own `this`; handed over as Moleculer takes a schema, untyped (types/mixin.ts).
export default ReportService as unknown as ServiceSchema;
