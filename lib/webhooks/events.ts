import { randomUUID } from "node:crypto";

/** The domain events Base A writes to its outbox (docs/webhooks.md). */
export const BASE_A_EVENT_TYPES = ["debt.created", "debt.settled", "person.changed", "erased"] as const;
/** Every event type a subscription may name; Base B's and consultations' are designed, not yet emitted. */
export const EVENT_TYPES = [...BASE_A_EVENT_TYPES, "profile.changed", "consulted"] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/**
 * An event as JetStream carries it: the subject's blind index, never the CPF (each subscriber is shown
 * the CPF it put on its own monitoring list, resolved at delivery). `data` holds no personal field.
 */
export interface DomainEvent {
	id: string;
	seq: number;
	type: EventType;
	cpfBidx: string;
	at: string;
	data: Record<string, unknown>;
}

/** The outbox row of an event, inserted in the transaction of the write it describes. */
export const OUTBOX_INSERT_SQL = "INSERT INTO event_outbox (id, type, cpf_bidx, data) VALUES ($1, $2, $3, $4::jsonb) RETURNING id";

export function outboxRow(type: EventType, cpfBidx: string, data: Record<string, unknown>): unknown[] {
	return [randomUUID(), type, cpfBidx, JSON.stringify(data)];
}

/** The oldest unsent rows, locked so that two relays never publish the same batch at once. */
export const OUTBOX_PENDING_SQL = `SELECT id, seq, type, cpf_bidx, data, at FROM event_outbox WHERE sent_at IS NULL
	ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED`;
export const OUTBOX_MARK_SQL = "UPDATE event_outbox SET sent_at = now() WHERE id = ANY($1::uuid[])";
