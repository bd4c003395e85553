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

/**
 * The outbox row of an event, inserted in the transaction of the write it describes. A transaction-long
 * lock on the CPF is taken first, so that the CPF's events get their `seq` in the order they commit
 * (the order subscribers receive them in). Writes take it after their rows' locks and before the audit
 * chain's, always in that order, so it adds no deadlock.
 */
export const OUTBOX_INSERT_SQL = `WITH cpf_lock AS (SELECT pg_advisory_xact_lock(hashtextextended($3, 19)))
	INSERT INTO event_outbox (id, type, cpf_bidx, data, namespace) SELECT $1, $2, $3, $4::jsonb, $5 FROM cpf_lock RETURNING id`;

/** An intent (a Base B write about to happen): relayed only once confirmed. A repeated id adds nothing. */
export const OUTBOX_INTEND_SQL = `WITH cpf_lock AS (SELECT pg_advisory_xact_lock(hashtextextended($3, 19)))
	INSERT INTO event_outbox (id, type, cpf_bidx, data, namespace, ready) SELECT $1, $2, $3, $4::jsonb, $5, false FROM cpf_lock
	ON CONFLICT (id) DO NOTHING RETURNING id`;
export const OUTBOX_CONFIRM_SQL = "UPDATE event_outbox SET ready = true WHERE id = $1 RETURNING id";
export const OUTBOX_DISCARD_SQL = "DELETE FROM event_outbox WHERE id = $1 AND NOT ready RETURNING id";
/** Intents older than their write could still be running (ms): the node that made them is presumed gone. */
export const INTENT_GRACE_MS = 60_000;
export const OUTBOX_STALE_INTENTS_SQL = `SELECT id, cpf_bidx FROM event_outbox WHERE namespace = $1 AND NOT ready
	AND at < now() - ($2 || ' milliseconds')::interval ORDER BY seq LIMIT 100`;

/** The bind values of OUTBOX_INSERT_SQL; `namespace` is the broker's (whose relay sends the event). */
export function outboxRow(type: EventType, cpfBidx: string, data: Record<string, unknown>, namespace: string): unknown[] {
	return [randomUUID(), type, cpfBidx, JSON.stringify(data), namespace];
}

/** One relay at a time (the others stand by), so EVENTS holds each CPF's events in `seq` order. */
export const RELAY_LOCK_SQL = "SELECT pg_try_advisory_xact_lock(hashtext('event_outbox_relay:' || $1)) AS mine";
/** The namespace's oldest unsent rows. */
export const OUTBOX_PENDING_SQL = `SELECT id, seq, type, cpf_bidx, data, at FROM event_outbox WHERE namespace = $1 AND sent_at IS NULL AND ready
	ORDER BY seq LIMIT $2 FOR UPDATE`;
export const OUTBOX_MARK_SQL = "UPDATE event_outbox SET sent_at = now() WHERE id = ANY($1::uuid[])";

/** Sent events are kept as long as the stream keeps them (7 days: a replay or a new consumer may read them). */
export const OUTBOX_PRUNE_SQL = `DELETE FROM event_outbox WHERE id IN (
	SELECT id FROM event_outbox WHERE namespace = $1 AND sent_at < now() - interval '7 days' ORDER BY seq LIMIT 5000)`;
/** The delivery log keeps 30 days of finished deliveries. */
export const DELIVERIES_PRUNE_SQL = `DELETE FROM webhook_deliveries WHERE id IN (
	SELECT id FROM webhook_deliveries WHERE namespace = $1 AND status <> 'pending' AND created_at < now() - interval '30 days' LIMIT 5000)`;
