import type { CreditScore } from "../credit-score/scorecard";

/**
 * Credit scores kept in Base B (docs/credit-score.md, "History"), keyed by the CPF's blind index like
 * the profiles, so the ML export reads them beside the profile and an LGPD erasure deletes them with it.
 * `credit_scores` holds every computed score; `credit_scores_latest` the newest per person (`_id`: blind index).
 */
export const SCORE_HISTORY = "credit_scores";
export const SCORE_LATEST = "credit_scores_latest";

/** How many kept scores one page lists at most. */
export const HISTORY_MAX_PAGE = 100;

/** A kept score: no CPF, name or address; the components say what each part gave. */
export interface ScoreDoc {
	bidx: string;
	at: Date;
	score: number;
	band: string;
	risk: string;
	model: string;
	complete: boolean;
	missing: CreditScore["missing"];
	components: { code: string; value: number | null; points: number; neutral: boolean }[];
}

export function scoreDoc(bidx: string, s: CreditScore): ScoreDoc {
	return {
		bidx, at: new Date(s.computedAt), score: s.score, band: s.band, risk: s.risk, model: s.model, complete: s.complete,
		missing: s.missing.map(m => ({ part: m.part, reason: m.reason })),
		components: s.components.map(c => ({ code: c.code, value: c.value, points: c.points, neutral: c.neutral }))
	};
}

/** A kept score as GET /scores/:cpf/history lists it. */
export function historyView(d: ScoreDoc) {
	return { score: d.score, band: d.band, risk: d.risk, model: d.model, computedAt: d.at.toISOString(), complete: d.complete, missing: d.missing, components: d.components };
}

/** The ML export's credit-score columns of a person (docs/ml-export.md): null when never scored. */
export interface CreditScoreColumns {
	creditScore: number | null;
	creditBand: string | null;
	creditModel: string | null;
	creditComputedAt: string | null;
	/** points per characteristic code (null when the part was missing) */
	creditComponents: Record<string, number | null> | null;
}

export function creditScoreColumns(d: ScoreDoc | undefined): CreditScoreColumns {
	if (!d) return { creditScore: null, creditBand: null, creditModel: null, creditComputedAt: null, creditComponents: null };
	return {
		creditScore: d.score, creditBand: d.band, creditModel: d.model, creditComputedAt: d.at.toISOString(),
		creditComponents: Object.fromEntries(d.components.map(c => [c.code, c.neutral ? null : c.points]))
	};
}
