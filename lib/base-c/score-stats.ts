import { MOVEMENT_PERIOD_DAYS, MOVEMENT_WINDOW_DAYS, type MovementStats } from "../credit-score/inputs";

/** The window of consultationStats: the consultations of the last 90 days. */
export const CONSULTATION_STATS_DAYS = 90;

/** ISO day `days` after `iso` (negative: before). */
const plusDays = (iso: string, days: number) => new Date(Date.parse(iso) + days * 86_400_000).toISOString().slice(0, 10);

/** The aggregations of movementStats. */
export interface StatsAggs {
	volume: { value: number };
	card: { doc_count: number };
	periods: { buckets: { doc_count: number }[] };
}

/** The 30-day periods of movementStats: period k (0 = the newest) covers (today − 30(k+1), today − 30k]; `to` is exclusive. */
export const movementPeriods = (today: string) => Array.from({ length: MOVEMENT_WINDOW_DAYS / MOVEMENT_PERIOD_DAYS }, (_, k) => ({
	from: plusDays(today, -MOVEMENT_PERIOD_DAYS * (k + 1) + 1), to: plusDays(today, -MOVEMENT_PERIOD_DAYS * k + 1)
}));

/** The aggregations of movementStats, per subject or for one. */
export const movementAggs = (periods: { from: string; to: string }[]) => ({
	volume: { sum: { field: "valor_cents" } },
	card: { filter: { term: { tipo: "cartao" } } },
	periods: { date_range: { field: "data", format: "strict_date", ranges: periods } }
});

/** MovementStats from movementAggs' answer and the number of movements. */
export const movementStatsOf = (movements: number, a: StatsAggs): MovementStats => ({
	movements,
	volumeCents: Math.round(a.volume.value),
	cardMovements: a.card.doc_count,
	activePeriods: a.periods.buckets.filter(b => b.doc_count > 0).length
});

/**
 * The _msearch of a batch chunk's Base C parts (activity.scoreStatsMany; bench/batch.ts's raw side):
 * two searches over the whole set of subjects (`terms`), aggregated per subject with the same
 * definitions as movementStats and consultationStats.
 */
export function scoreStatsSearches(subjects: string[], today: string, movementsIndex: string, consultationsIndex: string): object[] {
	const periods = movementPeriods(today);
	const bySubject = { terms: { subject: subjects } };
	return [
		{ index: movementsIndex },
		{ size: 0, query: { bool: { filter: [bySubject, { range: { data: { gte: periods.at(-1)!.from, lte: today } } }] } },
			aggs: { bySubject: { terms: { field: "subject", size: subjects.length }, aggs: movementAggs(periods) } } },
		{ index: consultationsIndex },
		{ size: 0, query: { bool: { filter: [bySubject, { range: { at: { gte: `now-${CONSULTATION_STATS_DAYS}d` } } }] } },
			aggs: { bySubject: { terms: { field: "subject", size: subjects.length }, aggs: { consumers: { cardinality: { field: "consumer" } } } } } }
	];
}
