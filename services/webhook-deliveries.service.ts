import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { BaseAMixin, type BaseAThis } from "../mixins/base-a.mixin";
import type { Delivery } from "../middlewares/channels.middleware";
import type { MeshLocals, MeshMeta } from "../middlewares/zero-trust.middleware";
import { SECRET_FIELD, defineDelivery, monitorOwner } from "../lib/webhooks/models";
import { type DomainEvent, deliveryData, erasedBefore } from "../lib/webhooks/events";
import { signedHeaders } from "../lib/webhooks/signature";
import { RETRY_FOR_MS, backoffMs, post } from "../lib/webhooks/send";
import { NotFoundError, type Thrown } from "../lib/errors";
import { config } from "../config";
import * as f from "../lib/fields";

/** Deliveries in flight on this node, and per subscription (a slow receiver holds only its own). */
const MAX_IN_FLIGHT = 64;
const PER_SUBSCRIPTION = 4;
/** A claimed delivery is someone's for this long; a node dying with it leaves it to be tried again. */
const LEASE = "60 seconds";

// A fresh event for every monitor of its CPF whose consumer subscribed to its type since the event (both the
// monitor and the subscription older than it); a re-read event adds nothing, nor does one accepted before
// its CPF's erasure (run under the CPF's shared lock: an erasure either came first or removes these rows).
const FANOUT_SQL = `INSERT INTO webhook_deliveries (id, subscription_id, consumer_id, namespace, event_id, event_seq, event_type, event_at, cpf_bidx, data)
	SELECT gen_random_uuid(), s.id, s.consumer_id, $7, $1, $2, $3, $4, $5, $6::jsonb
	FROM webhook_subscriptions s JOIN monitors m ON m.consumer_id = s.consumer_id AND m.cpf_bidx = $5
	WHERE $3 = ANY(s.event_types) AND s.created_at <= $4 AND m.created_at <= $4 AND NOT ${erasedBefore("$3::text", "$5", "$4::timestamptz")}
	ON CONFLICT (subscription_id, event_id) DO NOTHING RETURNING id`;

// Due deliveries, a few per subscription, each sent only once every earlier event of its subscription and
// CPF is settled: no earlier delivery pending, and no earlier matching event of the last day still
// without its delivery (the fan-out of an earlier event may lag: the outbox says what must come first).
const CANDIDATES_SQL = `SELECT id, subscription_id FROM (
	SELECT d.id, d.subscription_id, row_number() OVER (PARTITION BY d.subscription_id ORDER BY d.event_seq) AS n
	FROM webhook_deliveries d JOIN webhook_subscriptions s ON s.id = d.subscription_id
	LEFT JOIN monitors m ON m.consumer_id = d.consumer_id AND m.cpf_bidx = d.cpf_bidx
	WHERE d.namespace = $4 AND d.status = 'pending' AND d.next_at <= now() AND NOT (d.subscription_id = ANY($1::uuid[]))
	AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e WHERE e.subscription_id = d.subscription_id AND e.cpf_bidx = d.cpf_bidx
		AND e.status = 'pending' AND e.event_seq < d.event_seq)
	AND NOT EXISTS (SELECT 1 FROM event_outbox o WHERE o.cpf_bidx = d.cpf_bidx AND o.seq < d.event_seq AND o.type = ANY(s.event_types)
		AND o.at >= greatest(s.created_at, m.created_at, now() - interval '1 day')
		AND NOT EXISTS (SELECT 1 FROM webhook_deliveries f WHERE f.subscription_id = d.subscription_id AND f.event_id = o.id))
) c WHERE n <= $2 LIMIT $3`;
// Claimed atomically: a row another node claimed meanwhile no longer matches.
const CLAIM_SQL = `UPDATE webhook_deliveries SET next_at = now() + interval '${LEASE}'
	WHERE id = ANY($1::uuid[]) AND status = 'pending' AND next_at <= now() RETURNING id`;
const LOAD_SQL = `SELECT d.id, d.subscription_id, d.consumer_id, d.event_id, d.event_type, d.event_at, d.created_at, d.cpf_bidx, d.data, d.attempts,
	s.url, s.secret_enc, m.cpf_enc, ${erasedBefore("d.event_type", "d.cpf_bidx", "d.event_at")} AS erased
	FROM webhook_deliveries d JOIN webhook_subscriptions s ON s.id = d.subscription_id
	LEFT JOIN monitors m ON m.consumer_id = d.consumer_id AND m.cpf_bidx = d.cpf_bidx
	WHERE d.id = ANY($1::uuid[])`;

interface Claimed {
	id: string; subscription_id: string; consumer_id: string; event_id: string; event_type: string; event_at: Date; created_at: Date;
	cpf_bidx: string; data: Record<string, unknown>; attempts: number; url: string; secret_enc: string; cpf_enc: string | null; erased: boolean;
}

interface DeliverySettings extends ServiceSettingSchema {
	backoffBaseMs: number;
	backoffMaxMs: number;
}

interface DeliveryMethods {
	fanout(batch: Delivery<DomainEvent>[]): Promise<void>;
	sendDue(): Promise<number>;
	deliver(d: Claimed): Promise<void>;
}

interface DeliveryVars extends BaseAThis {
	stopping: boolean;
	/** Aborts the requests in flight when the service stops (their rows' lease runs out: sent again). */
	aborter: AbortController;
	loop?: Promise<void>;
	inFlight: Map<string, Set<Promise<void>>>;
	/** Wakes the idle sender when a delivery in flight is done (its subscription has a slot again). */
	wake?: () => void;
}

type Ctx<P> = Context<P, MeshMeta, MeshLocals>;

function deliveryView(r: Record<string, any>) {
	const iso = (d: unknown) => (d ? new Date(d as string).toISOString() : null);
	return {
		id: r.id, subscriptionId: r.subscription_id, eventId: r.event_id, eventType: r.event_type, eventAt: iso(r.event_at), status: r.status,
		attempts: r.attempts, lastStatus: r.last_status, lastError: r.last_error, nextAt: r.status === "pending" ? iso(r.next_at) : null, deliveredAt: iso(r.delivered_at)
	};
}

/**
 * Webhook deliveries (docs/webhooks.md): a durable JetStream consumer of EVENTS turns each event into a
 * delivery row per matching subscription (acked once stored), and a sender posts the due rows, signed per
 * Standard Webhooks 1.0: at least once, in order per CPF and subscription, retried with backoff and
 * jitter for 24 h, then dead. A consumer lists and replays only its own deliveries.
 */
const WebhookDeliveriesService: ServiceSchema<DeliverySettings, DeliveryMethods, DeliveryVars> = {
	name: "webhook-deliveries",
	mixins: [BaseAMixin(defineDelivery)],
	// The retry schedule (lib/webhooks/send.ts backoffMs); tests and benches shorten it.
	settings: { backoffBaseMs: 1000, backoffMaxMs: 3600_000 },

	actions: {
		list: {
			callers: ["api"], scopes: ["monitoring:read"],
			params: {
				$$strict: true, subscriptionId: { ...f.uuid, optional: true },
				status: { type: "enum", values: ["pending", "delivered", "dead", "dropped"], optional: true },
				limit: { type: "number", integer: true, min: 1, max: 500, convert: true, optional: true }
			},
			async handler(ctx: Ctx<{ subscriptionId?: string; status?: string; limit?: number }>) {
				const rows = await this.query(
					`SELECT * FROM webhook_deliveries WHERE consumer_id = $1 AND ($2::uuid IS NULL OR subscription_id = $2) AND ($3::text IS NULL OR status = $3)
					 ORDER BY event_seq DESC LIMIT $4`,
					[ctx.locals.caller!.id, ctx.params.subscriptionId ?? null, ctx.params.status ?? null, ctx.params.limit ?? 100]
				);
				return { deliveries: rows.map(deliveryView) };
			}
		},

		/** Every consumer's dead letters, newest first: for operators (the REPL's webhooks:dead), not on HTTP. */
		deadLetters: {
			callers: ["operators"], scopes: ["monitoring:read"], audit: true,
			visibility: "public",
			params: { $$strict: true, limit: { type: "number", integer: true, min: 1, max: 500, convert: true, optional: true } },
			async handler(ctx: Ctx<{ limit?: number }>) {
				const rows = await this.query("SELECT * FROM webhook_deliveries WHERE status = 'dead' ORDER BY event_at DESC LIMIT $1", [ctx.params.limit ?? 100]);
				return rows.map(r => ({ ...deliveryView(r), consumerId: r.consumer_id }));
			}
		},

		/** An operator sends a dead letter again, whoever's it is (the REPL's webhooks:replay). */
		replayDead: {
			callers: ["operators"], scopes: ["monitoring:write"], audit: true,
			visibility: "public",
			params: { $$strict: true, id: f.uuid },
			async handler(ctx: Ctx<{ id: string }>) {
				const [row] = await this.query(
					`UPDATE webhook_deliveries SET status = 'pending', next_at = now(), attempts = 0, created_at = now() WHERE id = $1 AND status = 'dead' RETURNING *`, [ctx.params.id]);
				if (!row) throw new NotFoundError("Dead letter");
				return deliveryView(row);
			}
		},

		replay: {
			callers: ["api"], scopes: ["monitoring:write"], audit: true,
			params: { $$strict: true, id: f.uuid },
			async handler(ctx: Ctx<{ id: string }>) {
				const [row] = await this.query(
					`UPDATE webhook_deliveries SET status = 'pending', next_at = now(), attempts = 0, created_at = now(), delivered_at = NULL
					 WHERE id = $1 AND consumer_id = $2 RETURNING *`, [ctx.params.id, ctx.locals.caller!.id]);
				if (!row) throw new NotFoundError("Delivery");
				return deliveryView(row);
			}
		}
	},

	methods: {
		async fanout(batch) {
			// In stream order; a failing insert (Base A down) is retried in place rather than nak'd, so a
			// later event of the CPF never overtakes it. Stopping leaves the rest unacked: redelivered.
			for (const d of batch) {
				const e = d.data;
				if (!e?.id || !e.cpfBidx || !e.type) {
					d.msg.term();
					continue;
				}
				for (let attempt = 0; !this.stopping; attempt++) {
					try {
						await this.inTransaction(async t => {
							await this.holdCpf(e.cpfBidx, t);
							await this.query(FANOUT_SQL, [e.id, e.seq, e.type, e.at, e.cpfBidx, JSON.stringify(e.data ?? {}), this.broker.namespace], t);
						});
						d.msg.ack();
						break;
					} catch (err) {
						if (attempt === 0) this.logger.warn("Webhook fan-out waiting for Base A:", (err as Thrown)?.type ?? (err as Thrown)?.name);
						d.msg.working();
						await new Promise(r => setTimeout(r, Math.min(30_000, 500 * 2 ** Math.min(attempt, 6))));
					}
				}
				if (this.stopping) return;
			}
		},

		async sendDue() {
			// A subscription with all its slots taken is not looked at; one with some free gets at most as many.
			const full = [...this.inFlight].filter(([, running]) => running.size >= PER_SUBSCRIPTION).map(([sub]) => sub);
			const room = MAX_IN_FLIGHT - [...this.inFlight.values()].reduce((n, s) => n + s.size, 0);
			if (room <= 0) return 0;
			const found = await this.query<{ id: string; subscription_id: string }>(CANDIDATES_SQL, [full, PER_SUBSCRIPTION, room, this.broker.namespace]);
			const taken = new Map<string, number>();
			const candidates = found.filter(c => {
				const n = (taken.get(c.subscription_id) ?? this.inFlight.get(c.subscription_id)?.size ?? 0) + 1;
				taken.set(c.subscription_id, n);
				return n <= PER_SUBSCRIPTION;
			});
			if (candidates.length === 0) return 0;
			const claimed = await this.query<{ id: string }>(CLAIM_SQL, [candidates.map(c => c.id)]);
			if (claimed.length === 0) return 0;
			const rows = await this.query<Claimed>(LOAD_SQL, [claimed.map(c => c.id)]);
			for (const d of rows) {
				const running = this.inFlight.get(d.subscription_id) ?? new Set();
				this.inFlight.set(d.subscription_id, running);
				const p: Promise<void> = this.deliver(d)
					.catch(err => this.logger.warn("Webhook delivery not recorded:", (err as Thrown)?.name))
					.finally(() => {
						running.delete(p);
						if (running.size === 0) this.inFlight.delete(d.subscription_id);
						this.wake?.();
					});
				running.add(p);
			}
			return rows.length;
		},

		async deliver(d) {
			const bidx = d.cpf_bidx.trim();
			// The monitor was removed since: the consumer no longer asked to hear of this CPF. Or the CPF was
			// erased after the event (a replay of a delivered one): never sent again.
			if (!d.cpf_enc || d.erased) {
				await this.query("UPDATE webhook_deliveries SET status = 'dropped' WHERE id = $1", [d.id]);
				return;
			}
			const { cpf } = this.openFields("monitors", monitorOwner(d.consumer_id, bidx), d, ["cpf"]);
			const secret = this.pii.decrypt(d.secret_enc, `${SECRET_FIELD}.secret:${d.subscription_id}`);
			const body = JSON.stringify({ id: d.event_id, type: d.event_type, timestamp: new Date(d.event_at).toISOString(), data: { cpf, ...deliveryData(d.event_type, d.data, d.consumer_id) } });
			const policy = { allowPrivate: config.webhooksAllowPrivate, httpsOnly: config.env === "production" };
			const outcome = await post(d.url, signedHeaders(secret, d.event_id, body), body, policy, this.aborter.signal);
			if (this.aborter.signal.aborted) return;
			if (outcome.ok) {
				await this.query("UPDATE webhook_deliveries SET status = 'delivered', attempts = attempts + 1, last_status = $2, last_error = NULL, delivered_at = now() WHERE id = $1", [d.id, outcome.status]);
				return;
			}
			// 24 h from the event, or from a replay of it.
			const dead = Date.now() - Math.max(new Date(d.event_at).getTime(), new Date(d.created_at).getTime()) > RETRY_FOR_MS;
			await this.query(
				`UPDATE webhook_deliveries SET attempts = attempts + 1, last_status = $2, last_error = $3,
				 status = CASE WHEN $4 THEN 'dead' ELSE 'pending' END, next_at = now() + ($5 || ' milliseconds')::interval WHERE id = $1`,
				[d.id, outcome.status ?? null, outcome.error ?? `HTTP ${outcome.status}`, dead, String(backoffMs(d.attempts, this.settings.backoffBaseMs, Math.random, this.settings.backoffMaxMs))]
			);
		}
	},

	channels: {
		events: { durable: "webhook-fanout", batchSize: 100, handler(batch: Delivery<DomainEvent>[]) { return this.fanout(batch); } }
	},

	started() {
		this.stopping = false;
		this.aborter = new AbortController();
		this.inFlight = new Map();
		this.loop = (async () => {
			while (!this.stopping) {
				let sent = 0;
				try {
					sent = await this.sendDue();
				} catch (err) {
					this.logger.warn("Webhook sender paused:", (err as Thrown)?.type ?? (err as Thrown)?.name);
					await new Promise(r => setTimeout(r, 1000));
				}
				// Nothing to claim: look again in 100 ms, or as soon as a slot is free.
				if (sent === 0) {
					await new Promise<void>(r => {
						const timer = setTimeout(r, 100);
						this.wake = () => {
							clearTimeout(timer);
							r();
						};
					});
					this.wake = undefined;
				}
			}
		})();
	},

	async stopped() {
		this.stopping = true;
		this.aborter.abort();
		await this.loop;
		await Promise.allSettled([...this.inFlight.values()].flatMap(s => [...s]));
	}
};

// Checked above against its own `this`; handed over as Moleculer takes a schema, untyped (types/mixin.ts).
export default WebhookDeliveriesService as unknown as ServiceSchema;
