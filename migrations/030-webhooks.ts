import type { Migration } from "./migration";

/**
 * CPF monitoring (issue 19): the transactional outbox of Base A's domain events, the consumers'
 * monitoring lists, their webhook subscriptions and the delivery log (docs/webhooks.md).
 */
export const webhooks: Migration = {
	name: "030-webhooks",
	async up({ context: sql }) {
		await sql(`
			-- Written in the same transaction as the change it describes; the relay marks it sent once
			-- JetStream stored it (the id is JetStream's Nats-Msg-Id: a re-sent row is dropped there).
			-- namespace: the mesh whose relay sends it (one per database in production; tests share one).
			CREATE TABLE event_outbox (
				id         uuid PRIMARY KEY,
				seq        bigserial UNIQUE,
				namespace  text NOT NULL,
				type      text NOT NULL,
				cpf_bidx  char(64) NOT NULL,
				data      jsonb NOT NULL,
				at        timestamptz NOT NULL DEFAULT now(),
				sent_at   timestamptz,
				-- false: an intent of a Base B write (no transactions there), confirmed or discarded (docs/webhooks.md)
				ready     boolean NOT NULL DEFAULT true
			);
			CREATE INDEX event_outbox_unsent_idx ON event_outbox (namespace, seq) WHERE sent_at IS NULL AND ready;
			CREATE INDEX event_outbox_intents_idx ON event_outbox (namespace, at) WHERE NOT ready;
			CREATE INDEX event_outbox_cpf_idx ON event_outbox (cpf_bidx, seq);

			-- A consumer's monitoring list: the CPF it put there, sealed, and its blind index.
			CREATE TABLE monitors (
				consumer_id  text NOT NULL,
				cpf_bidx     char(64) NOT NULL,
				cpf_enc      text NOT NULL,
				created_at   timestamptz NOT NULL DEFAULT now(),
				PRIMARY KEY (consumer_id, cpf_bidx)
			);
			CREATE INDEX monitors_bidx_idx ON monitors (cpf_bidx);

			CREATE TABLE webhook_subscriptions (
				id           uuid PRIMARY KEY,
				consumer_id  text NOT NULL,
				url          text NOT NULL,
				event_types  text[] NOT NULL,
				secret_enc   text NOT NULL,
				created_at   timestamptz NOT NULL DEFAULT now()
			);
			CREATE INDEX webhook_subscriptions_consumer_idx ON webhook_subscriptions (consumer_id);

			-- One row per (subscription, event): at least once, deduplicated by the pair.
			CREATE TABLE webhook_deliveries (
				id               uuid PRIMARY KEY,
				subscription_id  uuid NOT NULL REFERENCES webhook_subscriptions(id) ON DELETE CASCADE,
				consumer_id      text NOT NULL,
				namespace        text NOT NULL,
				event_id         uuid NOT NULL,
				event_seq        bigint NOT NULL,
				event_type       text NOT NULL,
				event_at         timestamptz NOT NULL,
				cpf_bidx         char(64) NOT NULL,
				data             jsonb NOT NULL,
				status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead', 'dropped')),
				attempts         integer NOT NULL DEFAULT 0,
				next_at          timestamptz NOT NULL DEFAULT now(),
				last_status      integer,
				last_error       text,
				created_at       timestamptz NOT NULL DEFAULT now(),
				delivered_at     timestamptz,
				UNIQUE (subscription_id, event_id)
			);
			CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (namespace, next_at) WHERE status = 'pending';
			CREATE INDEX webhook_deliveries_order_idx ON webhook_deliveries (subscription_id, cpf_bidx, event_seq) WHERE status = 'pending';
			CREATE INDEX webhook_deliveries_consumer_idx ON webhook_deliveries (consumer_id, created_at);

			GRANT SELECT, INSERT, UPDATE, DELETE ON event_outbox, monitors, webhook_subscriptions, webhook_deliveries TO credit_app;
			GRANT USAGE ON SEQUENCE event_outbox_seq_seq TO credit_app;
		`);
	},
	async down({ context: sql }) {
		await sql(`DROP TABLE IF EXISTS webhook_deliveries, webhook_subscriptions, monitors, event_outbox`);
	}
};
