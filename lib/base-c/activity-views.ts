import { formatDate } from "../dates";
import { InvalidFieldError } from "../errors";
import { fromCents } from "../money";

// What Base C's reader (services/activity.service.ts) reads back from Elasticsearch, and how it shows it.

/** A movement as Base C keeps it, in the fields read back. */
export interface MovementDoc {
	tipo: string;
	valor_cents: number;
	data: string;
}

/** A search hit as read here: its id, its source (the fields asked for) and its sort values. */
export interface Hit<T> {
	_id: string;
	_source: T;
	sort: unknown[];
}

/**
 * An Elasticsearch search answer as this service reads it (the client's types leave every part optional):
 * the hits, their exact total (track_total_hits), the aggregations asked for; in an _msearch, or an error.
 */
export interface SearchAnswer<T, TAggregations = unknown> {
	hits: { total: { value: number }; hits: Hit<T>[] };
	aggregations: TAggregations;
	error?: { type: string };
	status?: number;
}

/** Per-`tipo` totals of the movements search. */
export interface ByTipo {
	byTipo: { buckets: { key: string; doc_count: number; cents: { value: number } }[] };
}



/** Per-subject buckets of scoreStatsMany's two searches. */
export type BySubject<T> = { bySubject: { buckets: ({ key: string; doc_count: number } & T)[] } };

export const movementView = (m: MovementDoc) => ({ tipo: m.tipo, valor: fromCents(m.valor_cents), data: formatDate(m.data) });

/**
 * What one LGPD access export carries from Base C, newest first: bounded so the answer fits a NATS
 * message (max_payload 8 MB) and a node's memory whatever a person's history; the rest is paged
 * through GET /activity/:cpf/movements from `movementsNext`.
 */
export const EXPORT_MAX_MOVEMENTS = 10_000;
export const EXPORT_MAX_CONSULTATIONS = 1_000;

/** `after` cursors are opaque to clients: the sort values of the last row, base64url JSON. */
export const encodeCursor = (sort: unknown[]) => Buffer.from(JSON.stringify(sort)).toString("base64url");
export function decodeCursor(after: string): unknown[] {
	try {
		const sort = JSON.parse(Buffer.from(after, "base64url").toString());
		if (Array.isArray(sort) && sort.length === 2 && typeof sort[0] === "number" && typeof sort[1] === "string") return sort;
	} catch {
		// fall through
	}
	throw new InvalidFieldError("after", "The 'after' cursor is not one this API gave out.", "cursor");
}
