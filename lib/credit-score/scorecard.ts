import { CHARACTERISTICS, maxPoints, pointsOf } from "./characteristics";
import type { MissingReason, PartName, ScoreInputs } from "./inputs";

/** The scorecard's version: every answer and every kept score carries it. Change it with any bin or point. */
export const MODEL_VERSION = "cm-score-1.0";

/** Bands from the top: the first whose `min` the score reaches. */
export const BANDS = [
	{ min: 800, band: "A", risk: "muito baixo risco" },
	{ min: 650, band: "B", risk: "baixo risco" },
	{ min: 500, band: "C", risk: "risco moderado" },
	{ min: 300, band: "D", risk: "alto risco" },
	{ min: 0, band: "E", risk: "muito alto risco" }
] as const;

/** How many reasons an answer gives at most: the strongest negative factors. */
export const MAX_REASONS = 4;

export interface Component {
	code: string;
	part: PartName;
	/** the number the bins read (null: the part is missing, or has no such number) */
	value: number | null;
	points: number;
	maxPoints: number;
	/** true when the part was missing and the neutral points were given */
	neutral: boolean;
}

export interface ScoreReason {
	code: string;
	/** points below the characteristic's best */
	pointsLost: number;
	message: string;
}

export interface CreditScore {
	score: number;
	band: string;
	risk: string;
	model: string;
	computedAt: string;
	/** false when some part was missing */
	complete: boolean;
	missing: { part: PartName; reason: MissingReason }[];
	components: Component[];
	reasons: ScoreReason[];
}

const PARTS: PartName[] = ["debts", "assets", "movements", "consultations"];

/** A part as the characteristics read it: movements with none in the window are a missing part too. */
function present(inputs: ScoreInputs, part: PartName): object | null {
	const value = inputs[part];
	if (part === "movements" && inputs.movements && inputs.movements.movements === 0) return null;
	return value;
}

/**
 * The credit score of a person from the parts of the three bases (docs/credit-score.md): pure and
 * deterministic for the same inputs and `now`. A missing part never fails: its characteristics take
 * their neutral points and the answer names it in `missing`.
 */
export function scoreCredit(inputs: ScoreInputs, now: Date = new Date()): CreditScore {
	const missing = PARTS.filter(p => present(inputs, p) === null).map(part => ({
		part,
		reason: inputs.missing?.[part] ?? "no_data" as MissingReason
	}));
	const components: Component[] = CHARACTERISTICS.map(c => {
		const part = present(inputs, c.part);
		if (part === null) return { code: c.code, part: c.part, value: null, points: c.neutral, maxPoints: maxPoints(c), neutral: true };
		const value = c.value(part as never);
		const points = value === null ? c.none ?? 0 : pointsOf(c, value);
		return { code: c.code, part: c.part, value, points, maxPoints: maxPoints(c), neutral: false };
	});
	const score = Math.max(0, Math.min(1000, components.reduce((sum, c) => sum + c.points, 0)));
	const { band, risk } = BANDS.find(b => score >= b.min)!;
	// The strongest negative factors: most points lost first; ties in the table's order (stable sort).
	const reasons = components
		.map((c, i) => ({ code: c.code, pointsLost: c.maxPoints - c.points, message: CHARACTERISTICS[i].message(c.value) }))
		.filter(r => r.pointsLost > 0)
		.sort((a, b) => b.pointsLost - a.pointsLost)
		.slice(0, MAX_REASONS);
	return { score, band, risk, model: MODEL_VERSION, computedAt: now.toISOString(), complete: missing.length === 0, missing, components, reasons };
}
