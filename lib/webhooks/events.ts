import { createHash, randomUUID } from "node:crypto";

/** The domain events Base A writes to its outbox (docs/webhooks.md). */
export const BASE_A_EVENT_TYPES = ["debt.created", "debt.settled", "person.changed", "erased"] as const;
/** Base B's events: announced as intents in Base A's outbox, confirmed after the write (no transactions there). */
export const INTENT_EVENT_TYPES = ["profile.changed", "score.changed"] as const;
/** Every event type a subscription may name. */
export const EVENT_TYPES = [...BASE_A_EVENT_TYPES, ...INTENT_EVENT_TYPES, "consulted"] as const;
export type EventType = (typeof EVENT_TYPES)[number];
export type IntentEventType = (typeof INTENT_EVENT_TYPES)[number];

/** The action of the Base B service that says whether its write of an intent's event happened (an `_id` read). */
export const INTENT_CHECKS: Record<IntentEventType, string> = {
	"profile.changed": "profiles.eventApplied",
	"score.changed": "score-history.eventApplied"
};

/** Event types a subscription may name only with a scope of its own: a score band is what score:read guards. */
export const EVENT_TYPE_SCOPES: Partial<Record<EventType, string>> = { "score.changed": "score:read" };

/**
 * The id of the `consulted` event of one request about one CPF: the same for every audited part of it
 * (a report reads several actions, each audited), so the outbox keeps one (ON CONFLICT DO NOTHING).
 */
export function consultedEventId(requestId: string | null | undefined, cpfBidx: string): string {
	if (!requestId) return randomUUID();
	const h = createHash("sha256").update(`consulted:${requestId}:${cpfBidx}`).digest("hex");
	return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h[16], 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/**
 * `consulted` outbox rows, written by the audit writer in the transaction of the consultation's audit row
 * (a consultation audited is a consultation announced), only for CPFs some consumer monitors with a
 * subscription to `consulted` (a consultation of an unmonitored CPF is nobody's event). Without the CPF's
 * outbox lock: the writer holds the audit chain's lock, which writes take after the CPF's (docs/webhooks.md).
 */
export const CONSULTED_INSERT_SQL = `INSERT INTO event_outbox (id, type, cpf_bidx, data, namespace)
	SELECT u.id, 'consulted', u.b, u.d::jsonb, u.ns FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) AS u(id, b, d, ns)
	WHERE EXISTS (SELECT 1 FROM monitors m JOIN webhook_subscriptions s ON s.consumer_id = m.consumer_id
		WHERE m.cpf_bidx = u.b AND 'consulted' = ANY(s.event_types))
	ON CONFLICT (id) DO NOTHING`;

/**
 * What a subscriber is told of an event's data. A `consulted` event names who consulted only as the
 * subscriber's relation to it: `you`, `another-consumer` or `operator` (the bureau's staff), never
 * another consumer's id or name; with the purpose stated.
 */
export function deliveryData(type: string, data: Record<string, unknown>, subscriber: string): Record<string, unknown> {
	if (type !== "consulted") return data;
	const by = data.by === subscriber ? "you" : data.by === "operator" ? "operator" : "another-consumer";
	return { purpose: data.purpose, by };
}

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

/**
 * An intent (a Base B write about to happen): relayed only once confirmed. A repeated id adds nothing; nor
 * does a write accepted (at $6) before the CPF's erasure in Base A (docs/erasure.md).
 */
export const OUTBOX_INTEND_SQL = `WITH cpf_lock AS (SELECT pg_advisory_xact_lock(hashtextextended($3, 19)))
	INSERT INTO event_outbox (id, type, cpf_bidx, data, namespace, ready) SELECT $1, $2, $3, $4::jsonb, $5, false FROM cpf_lock
	WHERE NOT EXISTS (SELECT 1 FROM erasures x WHERE x.cpf_bidx = $3 AND x.erased_at >= $6::timestamptz)
	ON CONFLICT (id) DO NOTHING RETURNING id`;

/**
 * The erasure of a CPF (persons.erase, under the CPF's exclusive lock, before its own `erased` event):
 * every outbox row of the CPF goes (unsent ones must never be sent; sent ones would only hold the order
 * of later deliveries up), and so do its pending and dead deliveries (a dead one could be replayed).
 * Delivered ones stay in the log (no personal data); a replay of one is dropped by the sender.
 */
export const ERASE_EVENTS_SQL = "DELETE FROM event_outbox WHERE cpf_bidx = $1 RETURNING id";
export const ERASE_DELIVERIES_SQL = "DELETE FROM webhook_deliveries WHERE cpf_bidx = $1 AND status IN ('pending', 'dead') RETURNING id";
/** An event accepted before its CPF's erasure (the `erased` event itself excepted), in SQL over `type`, `bidx`, `at`. */
export const erasedBefore = (type: string, bidx: string, at: string) =>
	`(${type} <> 'erased' AND EXISTS (SELECT 1 FROM erasures x WHERE x.cpf_bidx = ${bidx} AND x.erased_at >= ${at}))`;
export const OUTBOX_CONFIRM_SQL = "UPDATE event_outbox SET ready = true WHERE id = $1 RETURNING id";
export const OUTBOX_DISCARD_SQL = "DELETE FROM event_outbox WHERE id = $1 AND NOT ready RETURNING id";
/** Intents older than their write could still be running (ms): the node that made them is presumed gone. */
export const INTENT_GRACE_MS = 60_000;
export const OUTBOX_STALE_INTENTS_SQL = `SELECT id, type, cpf_bidx FROM event_outbox WHERE namespace = $1 AND NOT ready
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
