/** How many movements payload C lists, newest first. */
export const RECENT_MOVEMENTS = 20;

/** Newest first, ties by id: the order payload C lists movements in. */
export const NEWEST_MOVEMENTS: Record<string, "desc">[] = [{ data: "desc" }, { movement_id: "desc" }];

/**
 * The _msearch of a batch chunk's payloads C (activity.getMany; bench/batch.ts's raw side): the three
 * questions activity.get asks of one subject — last consultation, last card purchase, the latest
 * RECENT_MOVEMENTS movements — each asked once of the whole set (`terms` on the subjects), answered per
 * subject by a `terms` aggregation (a `max`, then `top_hits` in payload C's order).
 */
export function payloadCSearches(subjects: string[], movementsIndex: string, consultationsIndex: string): object[] {
	const bySubject = { terms: { subject: subjects } };
	const perSubject = (aggs: object) => ({ bySubject: { terms: { field: "subject", size: subjects.length }, aggs } });
	return [
		{ index: consultationsIndex },
		{ size: 0, query: { bool: { filter: [bySubject] } }, aggs: perSubject({ last: { max: { field: "at" } } }) },
		{ index: movementsIndex },
		{ size: 0, query: { bool: { filter: [bySubject, { term: { tipo: "cartao" } }] } }, aggs: perSubject({ last: { top_hits: { size: 1, sort: NEWEST_MOVEMENTS, _source: ["data", "valor_cents"] } } }) },
		{ index: movementsIndex },
		{ size: 0, query: { bool: { filter: [bySubject] } }, aggs: perSubject({ recent: { top_hits: { size: RECENT_MOVEMENTS, sort: NEWEST_MOVEMENTS, _source: ["tipo", "valor_cents", "data"] } } }) }
	];
}
