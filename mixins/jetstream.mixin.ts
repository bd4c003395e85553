import { AckPolicy, DiscardPolicy, type JetStreamClient, type JetStreamManager, type JsMsg, type NatsConnection, RetentionPolicy, StorageType, connect, nanos } from "nats";
import type { ServiceSchema } from "moleculer";
import { config } from "../config";
import { BaseUnavailableError } from "../lib/errors";
import { groupOf, type Group } from "../config/groups";
import { natsOptions } from "../config/nats";

/**
 * The durable channels of the mesh (NATS JetStream), each created and managed only by the group that
 * owns it (the other groups' NATS users may not touch JetStream's API, only publish into what they feed).
 * Names and subjects are prefixed with the Moleculer namespace, so meshes sharing a NATS server
 * (dev and test, or two deployments) never consume each other's messages.
 */
export const STREAMS: Record<"transactions" | "deadLetters" | "consultations" | "erasures", { name: string; subjects: string[]; retention: RetentionPolicy; max_age: number; owner: Group }> = {
	/** Movements accepted by POST /transactions, until Elasticsearch has them. */
	transactions: { name: "TRANSACTIONS", subjects: ["transactions.movement"], retention: RetentionPolicy.Workqueue, max_age: nanos(7 * 24 * 3600_000), owner: "base-c" },
	/** Movements Elasticsearch refused for good, with the reason. */
	deadLetters: { name: "TRANSACTIONS_DLQ", subjects: ["transactions.dead"], retention: RetentionPolicy.Limits, max_age: nanos(30 * 24 * 3600_000), owner: "base-c" },
	/** Consultations of a CPF (pseudonymised), for Base C's ultimaConsulta; fed by Base A, Base B and report. */
	consultations: { name: "CONSULTATIONS", subjects: ["events.cpf.consulted"], retention: RetentionPolicy.Workqueue, max_age: nanos(7 * 24 * 3600_000), owner: "base-c" },
	/** LGPD erasures still to finish (a base was down); kept until every base confirmed. */
	erasures: { name: "PRIVACY_ERASURES", subjects: ["privacy.erase"], retention: RetentionPolicy.Workqueue, max_age: nanos(365 * 24 * 3600_000), owner: "privacy" }
};

export type StreamKey = keyof typeof STREAMS;

/** One NATS connection per process for JetStream, opened on first use. */
let shared: Promise<{ nc: NatsConnection; js: JetStreamClient; manager: () => Promise<JetStreamManager> }> | undefined;
const ensured = new Set<string>();
/** Services of this process using the connection; the last one to stop closes it. */
let users = 0;

function jetstream() {
	shared ??= (async () => {
		const nc = await connect({
			...natsOptions(),
			name: `credit-mesh-jetstream-${process.pid}`,
			maxReconnectAttempts: -1,
			reconnectTimeWait: 500,
			// A stack trace captured per publish cost a fifth of the ingest path's CPU.
			noAsyncTraces: true
		});
		// The manager (JetStream's API) is made on first use: only the owners of streams may call it.
		let jsm: Promise<JetStreamManager> | undefined;
		return { nc, js: nc.jetstream({ timeout: 5000 }), manager: () => (jsm ??= nc.jetstreamManager({ timeout: 5000 }).catch(err => { jsm = undefined; throw err; })) };
	})().catch(err => {
		shared = undefined;
		throw err;
	});
	return shared;
}

/** A stream's name and subject within a namespace. */
export function channel(namespace: string, key: StreamKey): { name: string; subject: string } {
	const ns = namespace.replace(/[^A-Za-z0-9_-]/g, "_") || "default";
	return { name: `${ns}_${STREAMS[key].name}`, subject: `${ns}.${STREAMS[key].subjects[0]}` };
}

/** Creates or updates the stream when `service` belongs to its owner; the others only use its name. */
async function ensureStream(namespace: string, key: StreamKey, service: string): Promise<{ name: string; subject: string }> {
	const ch = channel(namespace, key);
	if (ensured.has(ch.name) || groupOf(service) !== STREAMS[key].owner) return ch;
	const jsm = await (await jetstream()).manager();
	const { owner: _owner, ...settings } = STREAMS[key];
	const cfg = {
		...settings, name: ch.name, subjects: [ch.subject], storage: StorageType.File, discard: DiscardPolicy.New,
		// A full stream refuses new messages (back-pressure: the API answers 503) rather than dropping old ones.
		max_bytes: config.jetstreamMaxBytes, duplicate_window: nanos(120_000)
	};
	try {
		await jsm.streams.info(cfg.name);
		await jsm.streams.update(cfg.name, cfg);
	} catch (err: any) {
		if (err?.code !== "404" && !/stream not found/i.test(err?.message ?? "")) throw err;
		await jsm.streams.add(cfg);
	}
	ensured.add(ch.name);
	return ch;
}

export interface Delivery<T> {
	data: T;
	msg: JsMsg;
}

/**
 * Publishing to and consuming from JetStream. `publish` resolves only once the server has stored the
 * message (a PubAck); `consumeBatches` runs a durable pull consumer (a consumer group: every replica
 * shares it) and hands batches to the service, which acks, naks or terminates each message.
 */
export const JetStreamMixin: Partial<ServiceSchema> = {
	methods: {
		async publish(stream: StreamKey, payload: unknown, msgID?: string) {
			try {
				const { subject } = await ensureStream(this.broker.namespace, stream, this.name);
				const { js } = await jetstream();
				return await js.publish(subject, JSON.stringify(payload), msgID ? { msgID } : undefined);
			} catch (err: any) {
				this.logger.warn(`JetStream refused a message for ${STREAMS[stream].name}:`, err?.code ?? err?.name);
				throw new BaseUnavailableError("C (ingest channel)");
			}
		},

		/** Removes a stored message that no longer needs handling (e.g. a job finished inline). */
		async forget(stream: StreamKey, seq: number) {
			const jsm = await (await jetstream()).manager();
			await jsm.streams.deleteMessage(channel(this.broker.namespace, stream).name, seq, false).catch(() => false);
		},

		/** `parallel` batches may be handled at once (e.g. two bulk requests keep both of Elasticsearch's cores busy). */
		consumeBatches<T>(stream: StreamKey, durable: string, handle: (batch: Delivery<T>[]) => Promise<void>, batchSize = 1000, parallel = 1) {
			this.consumersRunning ??= [];
			const loop = (async () => {
				while (!this.stopping) {
					try {
						const { name } = await ensureStream(this.broker.namespace, stream, this.name);
						const { js, manager } = await jetstream();
						const jsm = await manager();
						await jsm.consumers.add(name, {
							durable_name: durable, ack_policy: AckPolicy.Explicit, ack_wait: nanos(60_000),
							max_ack_pending: batchSize * (parallel + 3), max_deliver: -1
						});
						const consumer = await js.consumers.get(name, durable);
						// consume() keeps pulling while a batch is being handled; a short pause gathers a burst
						// into one batch, and a lone message waits milliseconds, not a fetch's second.
						const messages = await consumer.consume({ max_messages: batchSize * (parallel + 1) });
						this.subscriptions.add(messages);
						const pending: Delivery<T>[] = [];
						let ended = false;
						const reader = (async () => {
							for await (const msg of messages) {
								let data: T;
								try {
									data = msg.json<T>();
								} catch {
									data = undefined as T;
								}
								pending.push({ data, msg });
							}
						})().finally(() => (ended = true));
						const inFlight = new Set<Promise<void>>();
						try {
							while (!this.stopping && !ended) {
								if (pending.length < batchSize) await new Promise(r => setTimeout(r, pending.length === 0 ? 10 : 5));
								if (pending.length === 0) continue;
								const handled: Promise<void> = handle(pending.splice(0, batchSize)).finally(() => inFlight.delete(handled));
								inFlight.add(handled);
								if (inFlight.size >= parallel) await Promise.race(inFlight);
							}
						} finally {
							await Promise.allSettled(inFlight);
							messages.stop();
							this.subscriptions.delete(messages);
							await reader.catch(() => undefined);
						}
					} catch (err: any) {
						if (this.stopping) break;
						this.logger.warn(`Consumer ${durable} on ${STREAMS[stream].name} paused:`, err?.code ?? err?.name, err?.message);
						await new Promise(r => setTimeout(r, 1000));
					}
				}
			})();
			this.consumersRunning.push(loop);
		}
	},

	created() {
		users++;
		this.subscriptions = new Set<{ stop(): void }>();
	},

	/** The owner of streams puts them in place at once, so the groups that feed them find them there. */
	async started() {
		const owned = (Object.keys(STREAMS) as StreamKey[]).filter(key => STREAMS[key].owner === groupOf(this.name));
		await Promise.all(owned.map(key => ensureStream(this.broker.namespace, key, this.name)))
			.catch((err: Error) => this.logger.warn("JetStream streams not in place yet (retried on use):", err?.name, err?.message));
	},

	async stopped() {
		this.stopping = true;
		for (const s of this.subscriptions) s.stop();
		await Promise.allSettled(this.consumersRunning ?? []);
		if (--users === 0 && shared) {
			const { nc } = await shared;
			shared = undefined;
			ensured.clear();
			await nc.drain().catch(() => nc.close());
		}
	}
};
