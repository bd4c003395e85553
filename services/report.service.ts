import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import * as f from "../lib/fields";
import { activityPseudonym } from "../lib/base-c/subject";
import { classify, type Thrown } from "../lib/errors";
import type { MeshLocals, MeshMeta } from "../middlewares/zero-trust.middleware";

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
const ReportService: ServiceSchema<ServiceSettingSchema, object, ReportThis> = {
	name: "report",

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
				const allowed = entries.filter(([, p]) => p.status !== "forbidden");
				const unavailable = allowed.filter(([, p]) => p.status === "unavailable" || p.status === "error");
				if (allowed.length > 0 && unavailable.length === allowed.length) {
					// Nothing could be read at all: that is an outage, not a report.
					throw Object.assign(new Error("No base could answer; try again later"), { code: 503, type: "BASE_UNAVAILABLE", name: "BaseUnavailableError", data: { retryAfter: 5 } });
				}
				return { cpf, complete: unavailable.length === 0, ...parts };
			}
		}
	},

	created() {
		this.activitySubject = activityPseudonym();
	}
};

// Checked above against its own `this`; handed over as Moleculer takes a schema, untyped (types/mixin.ts).
export default ReportService as unknown as ServiceSchema;
