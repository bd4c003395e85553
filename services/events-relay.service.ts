import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { BaseAMixin, type BaseAThis } from "../mixins/base-a.mixin";
import { defineOutboxEvent } from "../lib/webhooks/models";
import {
	INTENT_GRACE_MS, OUTBOX_CONFIRM_SQL, OUTBOX_DISCARD_SQL, OUTBOX_INTEND_SQL, OUTBOX_MARK_SQL, OUTBOX_PENDING_SQL,
	OUTBOX_STALE_INTENTS_SQL, RELAY_LOCK_SQL, OUTBOX_PRUNE_SQL, DELIVERIES_PRUNE_SQL, INTENT_CHECKS, INTENT_EVENT_TYPES, type DomainEvent, type IntentEventType
} from "../lib/webhooks/events";
import type { Thrown } from "../lib/errors";

/** Rows relayed per transaction, and the pause when the outbox is empty. */
const BATCH = 500;
const IDLE_MS = 100;

/** How often stale intents are settled, and old rows pruned. */
const INTENT_SWEEP_MS = 5000;
const PRUNE_MS = 10 * 60_000;

interface RelayMethods {
	/** Publishes the oldest unsent outbox rows to EVENTS and marks them sent; how many it relayed. */
	relayOnce(): Promise<number>;
	/**
	 * Settles the intents older than `graceMs` whose writer never confirmed them: confirmed when Base B
	 * holds the write (its document names the event), discarded when it does not.
	 */
	settleIntents(graceMs?: number): Promise<{ confirmed: number; discarded: number }>;
}

interface RelayVars extends BaseAThis {
	relaying?: Promise<void>;
	sweeper?: ReturnType<typeof setInterval>;
	pruner?: ReturnType<typeof setInterval>;
	stopping: boolean;
}

interface OutboxRow { id: string; seq: string; type: DomainEvent["type"]; cpf_bidx: string; data: Record<string, unknown>; at: Date }

/**
 * Base A's outbox relay: every event a write committed reaches JetStream (EVENTS), in outbox order.
 * One relay works at a time (an advisory lock; replicas stand by), and marks the rows sent in the
 * transaction that read them, after JetStream acknowledged each; a relay dying in between leaves them unsent, and the next
 * publish carries the same Nats-Msg-Id (the event id), which JetStream drops as a duplicate.
 * Base B's writes, which have no transactions, announce their event as an intent first (docs/webhooks.md).
 */
const EventsRelayService: ServiceSchema<ServiceSettingSchema, RelayMethods, RelayVars> = {
	name: "events-relay",
	mixins: [BaseAMixin(defineOutboxEvent)],

	actions: {
		/** Base B, before a write: the event it will announce (relayed only once confirmed). */
		intend: {
			callers: ["base-b"], scopes: [],
			visibility: "public",
			params: {
				id: "uuid", type: { type: "enum", values: [...INTENT_EVENT_TYPES] }, cpfBidx: { type: "string", length: 64 }, data: { type: "object", optional: true },
				// When the write was accepted: an erasure of the CPF since then leaves it unannounced.
				acceptedAt: { type: "string", max: 40, optional: true }
			},
			async handler(ctx: Context<{ id: string; type: IntentEventType; cpfBidx: string; data?: Record<string, unknown>; acceptedAt?: string }>) {
				const p = ctx.params;
				await this.query(OUTBOX_INTEND_SQL, [p.id, p.type, p.cpfBidx, JSON.stringify(p.data ?? {}), this.broker.namespace, p.acceptedAt ?? new Date().toISOString()]);
				return null;
			}
		},
		/** Base B, after its write: the intent becomes an event. */
		confirm: {
			callers: ["base-b"], scopes: [],
			visibility: "public",
			params: { id: "uuid" },
			async handler(ctx: Context<{ id: string }>) {
				return { confirmed: (await this.query(OUTBOX_CONFIRM_SQL, [ctx.params.id])).length };
			}
		}
	},

	methods: {
		async settleIntents(graceMs = INTENT_GRACE_MS) {
			const stale = await this.query<{ id: string; type: IntentEventType; cpf_bidx: string }>(OUTBOX_STALE_INTENTS_SQL, [this.broker.namespace, String(graceMs)]);
			let confirmed = 0, discarded = 0;
			for (const intent of stale) {
				// Asked of the Base B service whose write it announced: does its document name the event?
				const applied: boolean = await this.broker.call(INTENT_CHECKS[intent.type], { cpfBidx: intent.cpf_bidx.trim(), id: intent.id }, { caller: this.fullName });
				if (applied) confirmed += (await this.query(OUTBOX_CONFIRM_SQL, [intent.id])).length;
				else discarded += (await this.query(OUTBOX_DISCARD_SQL, [intent.id])).length;
			}
			return { confirmed, discarded };
		},

		async relayOnce() {
			return this.inTransaction(async transaction => {
				const [{ mine }] = await this.query<{ mine: boolean }>(RELAY_LOCK_SQL, [this.broker.namespace], transaction);
				if (!mine) return 0;
				const rows = await this.query<OutboxRow>(OUTBOX_PENDING_SQL, [this.broker.namespace, BATCH], transaction);
				for (const r of rows) {
					const event: DomainEvent = { id: r.id, seq: Number(r.seq), type: r.type, cpfBidx: r.cpf_bidx.trim(), at: new Date(r.at).toISOString(), data: r.data };
					await this.broker.channels.publish("events", event, r.id);
				}
				if (rows.length > 0) await this.query(OUTBOX_MARK_SQL, [rows.map(r => r.id)], transaction);
				return rows.length;
			});
		}
	},

	started() {
		this.stopping = false;
		// Base B down: the intents wait for the next sweep.
		this.sweeper = setInterval(() => {
			this.settleIntents().catch(err => this.logger.warn("Intents not settled yet:", (err as Thrown)?.type ?? (err as Thrown)?.name));
		}, INTENT_SWEEP_MS);
		// Sent events past the stream's age, finished deliveries past the log's 30 days.
		this.pruner = setInterval(() => {
			Promise.all([OUTBOX_PRUNE_SQL, DELIVERIES_PRUNE_SQL].map(sql => this.query(`${sql} RETURNING id`, [this.broker.namespace])))
				.catch(err => this.logger.warn("Outbox not pruned:", (err as Thrown)?.type ?? (err as Thrown)?.name));
		}, PRUNE_MS);
		this.relaying = (async () => {
			while (!this.stopping) {
				let relayed = 0;
				try {
					relayed = await this.relayOnce();
				} catch (err) {
					this.logger.warn("Outbox relay paused:", (err as Thrown)?.type ?? (err as Thrown)?.name);
					await new Promise(r => setTimeout(r, 1000));
				}
				if (relayed < BATCH) await new Promise(r => setTimeout(r, IDLE_MS));
			}
		})();
	},

	async stopped() {
		this.stopping = true;
		clearInterval(this.sweeper);
		clearInterval(this.pruner);
		await this.relaying;
	}
};

// Checked above against its own `this`; handed over as Moleculer takes a schema, untyped (types/mixin.ts).
export default EventsRelayService as unknown as ServiceSchema;
