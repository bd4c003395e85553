import type { ServiceSchema, ServiceSettingSchema } from "moleculer";
import { BaseAMixin, type BaseAThis } from "../mixins/base-a.mixin";
import { defineOutboxEvent } from "../lib/webhooks/models";
import { OUTBOX_MARK_SQL, OUTBOX_PENDING_SQL, RELAY_LOCK_SQL, type DomainEvent } from "../lib/webhooks/events";
import type { Thrown } from "../lib/errors";

/** Rows relayed per transaction, and the pause when the outbox is empty. */
const BATCH = 500;
const IDLE_MS = 100;

interface RelayMethods {
	/** Publishes the oldest unsent outbox rows to EVENTS and marks them sent; how many it relayed. */
	relayOnce(): Promise<number>;
}

interface RelayVars extends BaseAThis {
	relaying?: Promise<void>;
	stopping: boolean;
}

interface OutboxRow { id: string; seq: string; type: DomainEvent["type"]; cpf_bidx: string; data: Record<string, unknown>; at: Date }

/**
 * Base A's outbox relay: every event a write committed reaches JetStream (EVENTS), in outbox order.
 * One relay works at a time (an advisory lock; replicas stand by), and marks the rows sent in the
 * transaction that read them, after JetStream acknowledged each; a relay dying in between leaves them unsent, and the next
 * publish carries the same Nats-Msg-Id (the event id), which JetStream drops as a duplicate.
 */
const EventsRelayService: ServiceSchema<ServiceSettingSchema, RelayMethods, RelayVars> = {
	name: "events-relay",
	mixins: [BaseAMixin(defineOutboxEvent)],

	methods: {
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
		await this.relaying;
	}
};

// Checked above against its own `this`; handed over as Moleculer takes a schema, untyped (types/mixin.ts).
export default EventsRelayService as unknown as ServiceSchema;
