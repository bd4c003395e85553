import { classify, type Thrown } from "../errors";
import type { MissingReason, PartName, ScoreInputs } from "./inputs";

/** The credit score's side of a batch (POST /scores/batch): how four reads become the scorecard's inputs. */

/** A part as read from its base: its value, or why it is missing. */
export type PartRead = { ok: true; part: ScoreInputs[PartName] } | { ok: false; reason: MissingReason };

/** What became of a part that could not be read: not known to its base, or its base could not answer. */
export function missingOf(err: unknown): MissingReason {
	const e = err as Thrown;
	if (e?.type === "NOT_FOUND" || classify(err).outcome === "not_found") return "not_found";
	return e?.name === "ServiceNotFoundError" ? "not_supported" : "unavailable";
}

export const PART_NAMES: PartName[] = ["debts", "assets", "movements", "consultations"];

/**
 * The scorecard's inputs from the four reads of one person (single score and batch alike), or why
 * there is no score: nothing known anywhere is `not_found`, unless a base could not answer
 * (`unavailable`). Base C answers two parts: a part it does not support is `unavailable` unless the
 * other part came back (an older node).
 */
export function assembleInputs(reads: Record<PartName, PartRead>): { status: "ok"; inputs: ScoreInputs } | { status: "not_found" | "unavailable" } {
	const sameBase: Partial<Record<PartName, PartName>> = { consultations: "movements", movements: "consultations" };
	const inputs: ScoreInputs = { debts: null, assets: null, movements: null, consultations: null, missing: {} };
	const final: PartRead[] = PART_NAMES.map(name => {
		const r = reads[name];
		const other = sameBase[name];
		if (!r.ok && r.reason === "not_supported" && !(other && reads[other].ok)) return { ok: false, reason: "unavailable" };
		return r;
	});
	PART_NAMES.forEach((name, i) => {
		const r = final[i];
		if (r.ok) (inputs as Record<PartName, unknown>)[name] = r.part;
		else inputs.missing![name] = r.reason;
	});
	// Movements and consultations that are all zero know nothing either.
	const known = PART_NAMES.filter(name => inputs[name] !== null && !(name === "movements" && inputs.movements!.movements === 0)
		&& !(name === "consultations" && inputs.consultations!.consultations90d === 0));
	if (known.length > 0) return { status: "ok", inputs };
	return { status: final.some(r => !r.ok && r.reason === "unavailable") ? "unavailable" : "not_found" };
}
