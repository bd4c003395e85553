import { AckPolicy, DiscardPolicy, type JetStreamClient, type JetStreamManager, type JsMsg, type NatsConnection, type PubAck, StorageType, connect, nanos } from "nats";
import type { Middleware, Service, ServiceBroker } from "moleculer";
import { config } from "../config";
import { groupOf, type Group } from "../config/groups";
import { natsOptions } from "../config/nats";
import { BaseUnavailableError, type Thrown } from "../lib/errors";
import { STREAMS, SUBJECT_TOKEN, channel, type StreamKey } from "../lib/mesh/streams";
import { onScrape } from "../broker/prometheus.reporter";

/** Messages a durable consumer has not finished: not yet delivered plus delivered and not yet acked (the ingest lag). */
export const CONSUMER_PENDING = "credit_mesh.jetstream.consumer.pending";
/** Messages a stream holds (TRANSACTIONS_DLQ: the dead letters of the last 30 days). */
export const STREAM_MESSAGES = "credit_mesh.jetstream.stream.messages";

export interface Delivery<T> {
	data: T;
	msg: JsMsg;
}

/** When the stream accepted a delivery's message (the server's clock, in ms): the same on every redelivery. */
export function acceptedAt(d: Delivery<unknown>): number {
	return d.msg.info.timestampNanos / 1e6;
}

/**
 * A durable pull consumer, declared in a service schema's `channels` under the stream it reads
 * (ChannelsMiddleware runs it while the service runs). Every replica shares the durable name: a
 * consumer group. The handler acks, naks or terminates each message of its batch.
 */
export interface ChannelConsumer<T = unknown, TThis = Service> {
	durable: string;
	/** Messages handed to one call of the handler. */
	batchSize?: number;
	/** Batches handled at once (e.g. two bulk requests keep both of Elasticsearch's cores busy). */
	parallel?: number;
	/**
	 * How long a batch that is not full waits for more messages, from its first one (default 5 ms). A
	 * channel whose messages nobody waits for (consultations) trades a little delay for fewer, larger
	 * writes: each write costs the engine far more than each message in it.
	 */
	lingerMs?: number;
	/** Called with the service as `this` (a schema's `this`: types/moleculer.d.ts). */
	handler(this: TThis, batch: Delivery<T>[]): Promise<void>;
}

/** What services reach as `this.broker.channels`. */
export interface Channels {
	/**
	 * Resolves once the server stored the message (a PubAck); 503 when it cannot. `token` files it
	 * under `<subject>.<token>` on a stream that stores those (e.g. dead letters by person).
	 */
	publish(stream: StreamKey, payload: unknown, msgID?: string, token?: string): Promise<PubAck>;
	/** Removes every message filed under `<subject>.<token>` (e.g. an erased person's dead letters); how many. */
	purge(stream: StreamKey, token: string): Promise<number>;
	/** Removes a stored message that no longer needs handling (e.g. a job finished inline). */
	forget(stream: StreamKey, seq: number): Promise<void>;
	/** Appends `data` only if the stream's last message is still `lastSeq` (0: empty), else throws: one writer wins a race. */
	append(stream: StreamKey, data: string, lastSeq: number): Promise<PubAck>;
	/** A stored message by its stream sequence, or the last one; null when there is none. */
	message(stream: StreamKey, seq?: number): Promise<{ seq: number; data: Uint8Array } | null>;
}

const pause = (ms: number) => new Promise(r => setTimeout(r, ms));

/** One broker's JetStream connection, the streams it put in place and the consumers it runs. */
class JetStreamLink implements Channels {
	private connection?: Promise<{ nc: NatsConnection; js: JetStreamClient; manager: () => Promise<JetStreamManager> }>;
	private readonly ensured = new Set<string>();
	/** The groups of this broker's services: only a stream's owner creates and manages it. */
	readonly groups = new Set<Group>();
	readonly consumers = new Map<Service, { stop(): Promise<void> }[]>();
	/** The durable consumers this broker runs, by stream: what its JetStream gauges report. */
	readonly durables = new Map<string, StreamKey>();
	private unwatch?: () => void;

	constructor(private readonly broker: ServiceBroker) {}

	private jetstream() {
		this.connection ??= (async () => {
			// The broker's own NATS user (each group has one), not the process's.
			const url = (this.broker.options.transporter as { options?: { url?: string } } | null)?.options?.url ?? config.transporter;
			const nc = await connect({
				...natsOptions(config, url), name: `credit-mesh-jetstream-${this.broker.nodeID}`, maxReconnectAttempts: -1, reconnectTimeWait: 500,
				// A stack trace captured per publish cost a fifth of the ingest path's CPU.
				noAsyncTraces: true
			});
			// The manager (JetStream's API) is made on first use: only the owners of streams may call it.
			let jsm: Promise<JetStreamManager> | undefined;
			return { nc, js: nc.jetstream({ timeout: 5000 }), manager: () => (jsm ??= nc.jetstreamManager({ timeout: 5000 }).catch(err => { jsm = undefined; throw err; })) };
		})().catch(err => {
			this.connection = undefined;
			throw err;
		});
		return this.connection;
	}

	/** Creates or updates the stream when this broker runs its owner; the others only use its name. */
	async ensure(key: StreamKey): Promise<{ name: string; subject: string; subjects: string[] }> {
		const ch = channel(this.broker.namespace, key);
		if (this.ensured.has(ch.name) || !this.groups.has(STREAMS[key].owner)) return ch;
		const jsm = await (await this.jetstream()).manager();
		const { owner: _owner, fixed, ...settings } = STREAMS[key];
		const cfg = {
			...settings, name: ch.name, subjects: ch.subjects, storage: StorageType.File, discard: DiscardPolicy.New,
			// A full stream refuses new messages (back-pressure: the API answers 503) rather than dropping old ones.
			max_bytes: config.jetstreamMaxBytes, duplicate_window: nanos(120_000),
			// Copies on as many servers of the cluster (JETSTREAM_REPLICAS: 3 in the stack, 1 on a single server); the
			// durable consumers inherit the stream's count (they leave num_replicas at 0), so they survive a server too.
			num_replicas: config.jetstreamReplicas
		};
		try {
			await jsm.streams.info(cfg.name);
			if (!fixed) await jsm.streams.update(cfg.name, cfg);
		} catch (err) {
			const e = err as Thrown;
			if (e?.code !== "404" && !/stream not found/i.test(e?.message ?? "")) throw err;
			await jsm.streams.add(cfg);
		}
		this.ensured.add(ch.name);
		return ch;
	}

	async publish(stream: StreamKey, payload: unknown, msgID?: string, token?: string): Promise<PubAck> {
		if (token !== undefined && !SUBJECT_TOKEN.test(token)) throw new TypeError("A subject token is letters, digits, - and _ only");
		try {
			const { subject } = await this.ensure(stream);
			const { js } = await this.jetstream();
			return await js.publish(token === undefined ? subject : `${subject}.${token}`, JSON.stringify(payload), msgID ? { msgID } : undefined);
		} catch (err) {
			const e = err as Thrown;
			this.broker.logger.warn(`JetStream refused a message for ${STREAMS[stream].name}:`, e?.code ?? e?.name);
			throw new BaseUnavailableError("C (ingest channel)");
		}
	}

	async purge(stream: StreamKey, token: string): Promise<number> {
		if (!SUBJECT_TOKEN.test(token)) throw new TypeError("A subject token is letters, digits, - and _ only");
		const { name, subject } = await this.ensure(stream);
		const jsm = await (await this.jetstream()).manager();
		return (await jsm.streams.purge(name, { filter: `${subject}.${token}` })).purged;
	}

	async forget(stream: StreamKey, seq: number): Promise<void> {
		const jsm = await (await this.jetstream()).manager();
		await jsm.streams.deleteMessage(channel(this.broker.namespace, stream).name, seq, false).catch(() => false);
	}

	async append(stream: StreamKey, data: string, lastSeq: number): Promise<PubAck> {
		const { subject } = await this.ensure(stream);
		const { js } = await this.jetstream();
		return js.publish(subject, data, { expect: { lastSequence: lastSeq } });
	}

	async message(stream: StreamKey, seq?: number): Promise<{ seq: number; data: Uint8Array } | null> {
		const { name, subject } = await this.ensure(stream);
		const jsm = await (await this.jetstream()).manager();
		try {
			const msg = await jsm.streams.getMessage(name, seq === undefined ? { last_by_subj: subject } : { seq });
			return { seq: msg.seq, data: msg.data };
		} catch (err) {
			const e = err as Thrown;
			if (e?.code === "404" || /no message found|not found/i.test(e?.message ?? "")) return null;
			throw err;
		}
	}

	/** Runs a durable consumer for `service` until stopped, reconnecting after any failure. */
	consume<T>(service: Service, stream: StreamKey, spec: ChannelConsumer<T>): { stop(): Promise<void> } {
		const { durable, batchSize = 1000, parallel = 1, lingerMs = 5 } = spec;
		let stopping = false;
		let messages: { stop(): void } | undefined;
		const loop = (async () => {
			while (!stopping) {
				try {
					const { name } = await this.ensure(stream);
					const { js, manager } = await this.jetstream();
					await (await manager()).consumers.add(name, {
						durable_name: durable, ack_policy: AckPolicy.Explicit, ack_wait: nanos(60_000),
						max_ack_pending: batchSize * (parallel + 3), max_deliver: -1
					});
					// consume() keeps pulling while a batch is being handled; the linger gathers a burst into
					// one batch, and a lone message waits that long, not a fetch's second.
					const pulled = await (await js.consumers.get(name, durable)).consume({ max_messages: batchSize * (parallel + 1) });
					messages = pulled;
					if (stopping) pulled.stop();
					const pending: Delivery<T>[] = [];
					let ended = false;
					const reader = (async () => {
						for await (const msg of pulled) {
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
					// When the batch now pending got its first message.
					let firstAt = 0;
					try {
						while (!stopping && !ended) {
							if (pending.length === 0) {
								firstAt = 0;
								await pause(10);
								continue;
							}
							firstAt ||= Date.now();
							const waited = Date.now() - firstAt;
							if (pending.length < batchSize && waited < lingerMs) {
								await pause(Math.min(lingerMs - waited, 10));
								continue;
							}
							firstAt = 0;
							const handled: Promise<void> = spec.handler.call(service, pending.splice(0, batchSize)).finally(() => inFlight.delete(handled));
							inFlight.add(handled);
							if (inFlight.size >= parallel) await Promise.race(inFlight);
						}
					} finally {
						await Promise.allSettled(inFlight);
						pulled.stop();
						await reader.catch(() => undefined);
					}
				} catch (err) {
					if (stopping) break;
					const e = err as Thrown;
					service.logger.warn(`Consumer ${durable} on ${STREAMS[stream].name} paused:`, e?.code ?? e?.name, e?.message);
					await pause(1000);
				}
			}
		})();
		return {
			async stop() {
				stopping = true;
				messages?.stop();
				await loop;
			}
		};
	}

	/**
	 * Puts the JetStream gauges on this broker's metrics, measured at each scrape: its consumers'
	 * pending counts and the size of the streams its groups own. Every replica reports the same figures
	 * (the consumers are shared): the alert rules take their max.
	 */
	watch(): void {
		if (this.unwatch || !this.broker.isMetricsEnabled()) return;
		this.unwatch = onScrape(this.broker, async () => {
			const jsm = await (await this.jetstream()).manager();
			const owned = (Object.keys(STREAMS) as StreamKey[]).filter(key => this.groups.has(STREAMS[key].owner));
			await Promise.allSettled([
				...[...this.durables].map(async ([durable, key]) => {
					const info = await jsm.consumers.info(channel(this.broker.namespace, key).name, durable);
					this.broker.metrics.set(CONSUMER_PENDING, info.num_pending + info.num_ack_pending, { stream: STREAMS[key].name, durable });
				}),
				...owned.map(async key => {
					const info = await jsm.streams.info(channel(this.broker.namespace, key).name);
					this.broker.metrics.set(STREAM_MESSAGES, info.state.messages, { stream: STREAMS[key].name });
				})
			]);
		});
	}

	async close(): Promise<void> {
		this.unwatch?.();
		this.unwatch = undefined;
		const connection = this.connection;
		this.connection = undefined;
		if (!connection) return;
		const { nc } = await connection.catch(() => ({ nc: undefined }));
		await nc?.drain().catch(() => nc.close());
	}
}

type ChannelsSchema = Partial<Record<StreamKey, ChannelConsumer>>;

/**
 * The mesh's durable channels (NATS JetStream) for every service of a broker, as moleculer-channels
 * does it: one connection per broker, opened on first use; `broker.channels` to publish; the consumers
 * a schema declares under `channels` run from the service's start to its stop. The owner group of a
 * stream puts it in place at start, so the groups that feed it find it there.
 */
export function ChannelsMiddleware(): Middleware {
	const links = new WeakMap<ServiceBroker, JetStreamLink>();
	return {
		name: "Channels",
		created(broker: ServiceBroker) {
			if (broker.isMetricsEnabled()) {
				broker.metrics.register({ name: CONSUMER_PENDING, type: "gauge", labelNames: ["stream", "durable"], description: "Messages a durable JetStream consumer has not finished" });
				broker.metrics.register({ name: STREAM_MESSAGES, type: "gauge", labelNames: ["stream"], description: "Messages a JetStream stream holds" });
			}
			const link = new JetStreamLink(broker);
			links.set(broker, link);
			broker.channels = link;
		},
		serviceCreated(service: Service) {
			const group = groupOf(service.name);
			if (group) links.get(service.broker)?.groups.add(group);
		},
		async serviceStarted(service: Service) {
			const link = links.get(service.broker);
			const group = groupOf(service.name);
			if (!link || !group) return;
			const owned = (Object.keys(STREAMS) as StreamKey[]).filter(key => STREAMS[key].owner === group);
			await Promise.all(owned.map(key => link.ensure(key)))
				.catch((err: Error) => service.logger.warn("JetStream streams not in place yet (retried on use):", err?.name, err?.message));
			const declared = (service.schema as { channels?: ChannelsSchema }).channels ?? {};
			const entries = Object.entries(declared) as [StreamKey, ChannelConsumer][];
			for (const [stream, spec] of entries) link.durables.set(spec.durable, stream);
			const running = entries.map(([stream, spec]) => link.consume(service, stream, spec));
			if (running.length > 0) link.consumers.set(service, running);
			if (owned.length > 0 || running.length > 0) link.watch();
		},
		async serviceStopping(service: Service) {
			const link = links.get(service.broker);
			await Promise.allSettled((link?.consumers.get(service) ?? []).map(c => c.stop()));
			link?.consumers.delete(service);
		},
		// The link stays: a broker started again reconnects on first use.
		async stopped(broker: ServiceBroker) {
			await links.get(broker)?.close();
		}
	};
}
