/**
 * What the credit score reads from each base (docs/credit-score.md), as plain numbers: each base
 * answers its part set-based (Base A: lib/base-a/debt-summary.ts; Base B: the asset score; Base C:
 * movement and consultation statistics). A part that could not be read is `null`, with the reason
 * in `missing`.
 */

/** Base A: a person's debts on a given day. "Overdue" = not settled and due before that day. */
export interface DebtSummary {
	/** debts not settled (due or not) */
	open: number;
	/** open debts whose due date has passed */
	overdue: number;
	/** their total, in cents */
	overdueCents: number;
	/** days since the oldest overdue debt fell due (0 when none) */
	maxDaysOverdue: number;
	/** settled on or before their due date */
	paidOnTime: number;
	/** settled after their due date */
	paidLate: number;
}

/** Base B: the asset score (docs/score.md), kept as one component. */
export interface AssetPart {
	score: number;
	band: string;
}

/** Base C: the movements of the last MOVEMENT_WINDOW_DAYS days (docs/credit-score.md). */
export interface MovementStats {
	/** movements in the window */
	movements: number;
	/** their total, in cents */
	volumeCents: number;
	/** `cartao` movements in the window */
	cardMovements: number;
	/** how many of the window's 30-day periods hold at least one movement (0–6) */
	activePeriods: number;
}

/** Base C: consultations of the CPF in the last 90 days. */
export interface ConsultationStats {
	consultations90d: number;
	distinctConsumers90d: number;
}

export type PartName = "debts" | "assets" | "movements" | "consultations";

/** Why a part is missing: the base does not know the person, knows nothing useful, or could not answer. */
export type MissingReason = "not_found" | "no_data" | "unavailable" | "not_supported";

export interface ScoreInputs {
	debts: DebtSummary | null;
	assets: AssetPart | null;
	movements: MovementStats | null;
	consultations: ConsultationStats | null;
	/** why each null part is missing (a null part without a reason counts as `no_data`) */
	missing?: Partial<Record<PartName, MissingReason>>;
}

/** The movement window: six 30-day periods before today. */
export const MOVEMENT_WINDOW_DAYS = 180;
export const MOVEMENT_PERIOD_DAYS = 30;

/** A debt as the pure summary reads it (ISO dates). */
export interface DebtFacts {
	valorCents: number;
	dataVencimento: string;
	dataPagamento: string | null;
}

const DAY_MS = 86_400_000;
/** Whole days from `fromIso` to `toIso` (ISO dates, UTC). */
export const daysBetween = (fromIso: string, toIso: string) => Math.round((Date.parse(toIso) - Date.parse(fromIso)) / DAY_MS);

/**
 * The debt summary of a list of debts on `todayIso`: the definition Base A's query follows
 * (lib/base-a/debt-summary.ts), kept here so the scorecard's promises can be tested on debts.
 */
export function summariseDebts(debts: readonly DebtFacts[], todayIso: string): DebtSummary {
	const s: DebtSummary = { open: 0, overdue: 0, overdueCents: 0, maxDaysOverdue: 0, paidOnTime: 0, paidLate: 0 };
	for (const d of debts) {
		if (d.dataPagamento === null) {
			s.open++;
			if (d.dataVencimento < todayIso) {
				s.overdue++;
				s.overdueCents += d.valorCents;
				s.maxDaysOverdue = Math.max(s.maxDaysOverdue, daysBetween(d.dataVencimento, todayIso));
			}
		} else if (d.dataPagamento <= d.dataVencimento) s.paidOnTime++;
		else s.paidLate++;
	}
	return s;
}
