import { randomBytes } from "node:crypto";
import { ServiceBroker, type ServiceSchema } from "moleculer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChannelsMiddleware, type Delivery } from "../../middlewares/channels.middleware";
import { deleteStreams, eventually } from "../support/mesh";
import { IN_PROCESS_PROMETHEUS, prometheusReporter, registerPrometheusReporter } from "../../broker/prometheus.reporter";

// ChannelsMiddleware on two in-process brokers of one namespace, against the real NATS JetStream: a
// consumer declared in a schema's `channels`, publishing through `broker.channels`, state per broker.
// The services stand in for ours only by name (their groups decide who owns a stream).
const namespace = `channels-${randomBytes(4).toString("hex")}`;
const received: { subject: string; batch: number }[] = [];
let batches = 0;

const Consumer: ServiceSchema = {
	name: "activity", // group base-c: owns the consultations stream
	channels: {
		consultations: {
			durable: "channels-test", batchSize: 50,
			async handler(batch: Delivery<{ subject: string }>[]) {
				batches++;
				for (const d of batch) {
					received.push({ subject: d.data.subject, batch: batches });
					d.msg.ack();
				}
			}
		}
	}
};
const Publisher: ServiceSchema = { name: "cpf-lookup" }; // group base-a: feeds the stream, may not manage it

const brokerOf = (name: string) => new ServiceBroker({ namespace, nodeID: `${name}-${process.pid}`, transporter: null, logger: false, middlewares: [ChannelsMiddleware()] });
const consumerBroker = brokerOf("consumer");
const publisherBroker = brokerOf("publisher");

beforeAll(async () => {
	consumerBroker.createService(Consumer);
	publisherBroker.createService(Publisher);
	await consumerBroker.start(); // the owner puts the stream in place at start
	await publisherBroker.start();
});
afterAll(async () => {
	await Promise.all([consumerBroker.stop(), publisherBroker.stop()]);
	await deleteStreams(namespace);
});

describe("ChannelsMiddleware", () => {
	it("gives each broker its own channels, never one of the process", () => {
		expect(consumerBroker.channels).toBeDefined();
		expect(publisherBroker.channels).not.toBe(consumerBroker.channels);
	});

	it("runs the consumer a schema declares, in batches, with what another broker published", async () => {
		const subjects = Array.from({ length: 120 }, (_, i) => `subject-${i}`);
		await Promise.all(subjects.map(subject => publisherBroker.channels.publish("consultations", { subject })));
		await eventually(async () => received.length, n => n >= subjects.length, 20_000, 100);
		expect(received.map(r => r.subject).sort()).toEqual([...subjects].sort());
		// Batched: never more than batchSize in one call, and not one call per message.
		const perBatch = new Map<number, number>();
		for (const r of received) perBatch.set(r.batch, (perBatch.get(r.batch) ?? 0) + 1);
		expect(Math.max(...perBatch.values())).toBeLessThanOrEqual(50);
		expect(perBatch.size).toBeLessThan(subjects.length);
	});

	it("stops the consumer with its service: what is published after waits in the stream for the next one", async () => {
		await consumerBroker.destroyService(consumerBroker.getLocalService("activity")!);
		const before = received.length;
		await publisherBroker.channels.publish("consultations", { subject: "after-stop" });
		await new Promise(r => setTimeout(r, 1000));
		expect(received.length).toBe(before);
		consumerBroker.createService(Consumer);
		await consumerBroker.waitForServices("activity");
		await eventually(async () => received.some(r => r.subject === "after-stop"), found => found, 20_000, 100);
	});

	it("refuses a publication with 503 when JetStream cannot take it, naming no payload", async () => {
		const lonely = new ServiceBroker({ namespace: `${namespace}-none`, nodeID: `lonely-${process.pid}`, transporter: null, logger: false, middlewares: [ChannelsMiddleware()] });
		lonely.createService({ name: "report" }); // no group of it owns a stream here: none exists in this namespace
		await lonely.start();
		try {
			await expect(lonely.channels.publish("consultations", { subject: "secret-subject" })).rejects.toMatchObject({ code: 503, name: "BaseUnavailableError" });
		} finally {
			await lonely.stop();
		}
	});
});

describe("ChannelsMiddleware's JetStream gauges (the consumer-lag and dead-letter alerts)", () => {
	// A mesh of its own: a work-queue stream takes one unfiltered consumer only.
	const ns = `channels-gauges-${randomBytes(4).toString("hex")}`;
	const held: Delivery<unknown>[] = [];
	// Takes its messages and never acknowledges them: they stay pending.
	const Holding: ServiceSchema = {
		name: "activity",
		channels: { consultations: { durable: "gauges-test", batchSize: 50, async handler(batch: Delivery<unknown>[]) { held.push(...batch); } } }
	};
	registerPrometheusReporter();
	const metered = (name: string) => new ServiceBroker({
		namespace: ns, nodeID: `${name}-${process.pid}`, transporter: null, logger: false, middlewares: [ChannelsMiddleware()],
		metrics: { enabled: true, reporter: [{ type: IN_PROCESS_PROMETHEUS as "Prometheus" }] }
	});
	const owner = metered("owner");
	const feeder = metered("feeder");

	beforeAll(async () => {
		owner.createService(Holding);
		// Group base-b: it feeds the consultations and owns no stream (base-a now owns EVENTS and the audit checkpoints).
		feeder.createService({ name: "profiles" });
		await owner.start();
		await feeder.start();
	});
	afterAll(async () => {
		await Promise.all([owner.stop(), feeder.stop()]);
		await deleteStreams(ns);
	});

	/** A gauge's value in the owner's exposition, as Prometheus scrapes it. */
	const gauge = async (name: string, labels: string) => {
		const text = await prometheusReporter(owner)!.scrape();
		const m = new RegExp(`^${name}\\{[^}]*${labels}[^}]*\\} (\\S+)$`, "m").exec(text);
		return m ? Number(m[1]) : undefined;
	};

	it("reports what the consumer has not finished and what the streams its group owns hold, measured at the scrape", async () => {
		for (let i = 0; i < 7; i++) await feeder.channels.publish("consultations", { i });
		await eventually(async () => held.length, n => n === 7, 20_000, 100);
		expect(await gauge("credit_mesh_jetstream_consumer_pending", 'stream="CONSULTATIONS",durable="gauges-test"')).toBe(7);
		expect(await gauge("credit_mesh_jetstream_stream_messages", 'stream="CONSULTATIONS"')).toBe(7);
		// base-c owns the dead-letter stream too: it is reported, empty.
		expect(await gauge("credit_mesh_jetstream_stream_messages", 'stream="TRANSACTIONS_DLQ"')).toBe(0);
		// The feeder's group owns no stream and runs no consumer: it reports none.
		expect(await prometheusReporter(feeder)!.scrape()).not.toMatch(/^credit_mesh_jetstream_/m);

		for (const d of held.splice(0, 4)) d.msg.ack();
		await eventually(() => gauge("credit_mesh_jetstream_consumer_pending", 'durable="gauges-test"'), v => v === 3, 10_000, 200);
		expect(await gauge("credit_mesh_jetstream_stream_messages", 'stream="CONSULTATIONS"')).toBe(3);
	});
});
