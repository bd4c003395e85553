import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import type { MeshLocals, MeshMeta } from "../middlewares/zero-trust.middleware";
import { config, need } from "../config";
import { blindIndexer } from "../lib/pii";
import { classify, NotFoundError, type Thrown } from "../lib/errors";
import type { MissingReason, PartName, ScoreInputs } from "../lib/credit-score/inputs";
import { type CreditScore, scoreCredit } from "../lib/credit-score/scorecard";
import * as f from "../lib/fields";

/**
 * Each part the scorecard reads (lib/credit-score/inputs.ts): the base action that answers it in one
 * query, and how its answer becomes the part. A Base C without activity.consultationStats (an older
 * node during a rolling update) leaves the consultations part missing as `not_supported`.
 */
const PARTS: Record<PartName, { action: string; read(answer: any): ScoreInputs[PartName] }> = {
	debts: { action: "cpf-lookup.debtSummary", read: a => a },
	assets: { action: "asset-score.get", read: a => ({ score: a.score, band: a.band }) },
	movements: { action: "activity.movementStats", read: a => a },
	consultations: { action: "activity.consultationStats", read: a => ({ consultations90d: a.consultations90d, distinctConsumers90d: a.distinctConsumers90d }) }
};

/** A base that has not answered in this time is down for this score: its part is missing. */
const PART_TIMEOUT_MS = 3000;
/** Keeping the score must not hold the answer up for long either. */
const RECORD_TIMEOUT_MS = 2000;

type Read = { ok: true; part: ScoreInputs[PartName] } | { ok: false; reason: MissingReason };

/** What became of a part that could not be read: not known to its base, or its base could not answer. */
function missingOf(err: unknown): MissingReason {
	const e = err as Thrown;
	if (e?.type === "NOT_FOUND" || classify(err).outcome === "not_found") return "not_found";
	return e?.name === "ServiceNotFoundError" ? "not_supported" : "unavailable";
}

interface CreditScoreThis {
	pii: { blindIndex(cpf: string): string };
}

/**
 * The bureau score of a CPF, 0–1000, from all three bases (docs/credit-score.md): the parts are read
 * in parallel with short timeouts, a part that cannot be read takes the scorecard's neutral points and
 * is named in `missing`, and every computed score is kept in Base B (score-history). Nothing known
 * anywhere is a 404; no base answering is a 503. One score is one consultation.
 */
const CreditScoreService: ServiceSchema<ServiceSettingSchema, object, CreditScoreThis> = {
	name: "credit-score",

	created() {
		// The audit row is filed under the CPF's blind index; this service opens no sealed field.
		this.pii = { blindIndex: blindIndexer(need(config, "blindIndexKey")) };
	},

	actions: {
		get: {
			callers: ["api"], scopes: ["score:read"], audit: true, consultation: true,
			params: { $$strict: true, cpf: f.cpf },
			async handler(ctx: Context<{ cpf: string }, MeshMeta, MeshLocals>) {
				const { cpf } = ctx.params;
				const names = Object.keys(PARTS) as PartName[];
				const reads = await Promise.all(names.map(async (name): Promise<Read> => {
					try {
						return { ok: true, part: PARTS[name].read(await ctx.call(PARTS[name].action, { cpf }, { timeout: PART_TIMEOUT_MS, retries: 0 })) };
					} catch (err) {
						return { ok: false, reason: missingOf(err) };
					}
				}));
				const inputs: ScoreInputs = { debts: null, assets: null, movements: null, consultations: null, missing: {} };
				// No such action anywhere is a base that is down, unless its service answered the other part.
				const sameBase = { consultations: "movements", movements: "consultations" } as Partial<Record<PartName, PartName>>;
				names.forEach((name, i) => {
					const r = reads[i];
					const other = sameBase[name];
					if (!r.ok && r.reason === "not_supported" && !(other && reads[names.indexOf(other)].ok)) reads[i] = { ok: false, reason: "unavailable" };
				});
				names.forEach((name, i) => {
					const r = reads[i];
					if (r.ok) (inputs as Record<PartName, unknown>)[name] = r.part;
					else inputs.missing![name] = r.reason;
				});
				// Nothing known anywhere (movements and consultations that are all zero know nothing either).
				const known = names.filter(name => inputs[name] !== null && !(name === "movements" && inputs.movements!.movements === 0)
					&& !(name === "consultations" && inputs.consultations!.consultations90d === 0));
				if (known.length === 0) {
					if (reads.some(r => !r.ok && r.reason === "unavailable")) {
						throw Object.assign(new Error("No base could answer; try again later"), { code: 503, type: "BASE_UNAVAILABLE", name: "BaseUnavailableError", data: { retryAfter: 5 } });
					}
					throw new NotFoundError("Person");
				}
				const score: CreditScore = scoreCredit(inputs);
				const recorded = await ctx.call("score-history.record", { cpf, score }, { timeout: RECORD_TIMEOUT_MS, retries: 0 }).then(() => true, (err: Thrown) => {
					this.logger.warn("Credit score not kept in the history:", err?.name);
					return false;
				});
				return { cpf, ...score, recorded };
			}
		}
	}
};

// Checked above against its own `this`; handed over as Moleculer takes a schema, untyped (types/mixin.ts).
export default CreditScoreService as unknown as ServiceSchema;
