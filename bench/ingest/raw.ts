// The raw sides of the ingest: helpers.bulk as a client would write the same documents, es.bulk shaped
// like the service's consumer, and JetStream publishes alone (what limits ours).
import type { Client } from "@elastic/elasticsearch";
import { DiscardPolicy, type NatsConnection, RetentionPolicy, StorageType, nanos } from "nats";
import type { Config } from "../../config";
import type { MovementRecord } from "../../lib/base-c/movement";
import { type CpuReport, cpuMeter, enginePids } from "../lib/cpu";
import { natsConnection } from "../lib/mesh";
import { countBySubjects, esDelta, esStats } from "./elasticsearch";
import { CONSUMER_BATCH, PUBLISH_CHUNK, serviceOperations } from "./services";

/**
 * helpers.bulk creating the records under their movement_id (received_at stamped once per 2000, as
 * the consumer does), then a refresh and a count: timed until searchable.
 */
export async function ingestRaw(es: Client, index: string, records: MovementRecord[], subjects: string[], target: number, bulk: { concurrency: number; flushBytes: number }) {
	const stats0 = await esStats(es, index);
	const dropped: string[] = [];
	let n = 0;
	let receivedAt = "";
	const t0 = process.hrtime.bigint();
	const stats = await es.helpers.bulk<MovementRecord>({
		datasource: records,
		onDocument: r => {
			if (n++ % CONSUMER_BATCH === 0) receivedAt = new Date().toISOString();
			return [{ create: { _index: index, _id: r.movement_id } }, { ...r, received_at: receivedAt }];
		},
		onDrop: d => void (dropped.length < 3 && dropped.push(JSON.stringify(d.error).slice(0, 300))),
		concurrency: bulk.concurrency,
		flushBytes: bulk.flushBytes,
		flushInterval: 30_000
	});
	const bulkSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
	if (stats.failed > 0) throw new Error(`raw bulk: ${stats.failed} of ${stats.total} documents refused; first: ${dropped[0]}`);
	const count = await countBySubjects(es, index, subjects);
	const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
	if (count !== target) throw new Error(`raw bulk: ${count} documents searchable in ${index}, expected ${target}`);
	return { seconds, bulkSeconds, es: esDelta(stats0, await esStats(es, index), seconds) };
}

/** es.bulk as the consumer calls it: CONSUMER_BATCH records per request, one request at a time, then refresh and count. */
export async function ingestShaped(es: Client, index: string, records: MovementRecord[], subjects: string[], target: number) {
	const stats0 = await esStats(es, index);
	const t0 = process.hrtime.bigint();
	for (let i = 0; i < records.length; i += CONSUMER_BATCH) {
		const res = await es.bulk({ operations: serviceOperations(index, records.slice(i, i + CONSUMER_BATCH)) });
		if (res.errors) throw new Error(`shaped bulk: ${JSON.stringify(res.items.find((it: any) => it.create?.error)).slice(0, 300)}`);
	}
	const bulkSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
	const count = await countBySubjects(es, index, subjects);
	const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
	if (count !== target) throw new Error(`shaped bulk: ${count} documents searchable in ${index}, expected ${target}`);
	return { seconds, bulkSeconds, es: esDelta(stats0, await esStats(es, index), seconds) };
}

/** The raw JetStream publish variants: as the service publishes, the same without async traces, one message per request. */
export const PUBLISH_VARIANTS = {
	service: "a message per movement, msgID, ≤1000 in flight (the service's first design)",
	noAsyncTraces: "the same on a connection with noAsyncTraces: true",
	perRequest: "one message per request (the records as a JSON array; the service does this per 1000)"
} as const;
export type PublishVariant = keyof typeof PUBLISH_VARIANTS;

/**
 * JetStream alone: the records published as transaction-ingest.ingest does (JSON, msgID = movement_id,
 * each "request" of `batch` records in chunks of PUBLISH_CHUNK, all of a chunk in flight, `parallel`
 * requests at a time) to a stream configured like the mesh's TRANSACTIONS (file, work queue,
 * duplicate window 120 s), until every PubAck is back; then the same from a connection made with
 * nats.js's `noAsyncTraces` (no stack captured per request), and one message per request. Each
 * variant has a stream of its own (the same msgIDs twice would be deduplicated), after a warm-up.
 */
export async function publishRaw(cfg: Config, nc: NatsConnection, namespace: string, warm: MovementRecord[], records: MovementRecord[], dataDir: string | undefined,
	o: { batch: number; parallel: number }, state: { extraStreams: string[] }) {
	const jsm = await nc.jetstreamManager({ timeout: 5000 });
	const engines = enginePids(dataDir);
	const results = {} as Record<PublishVariant, { seconds: number; cpu: CpuReport } | null>;
	for (const variant of Object.keys(PUBLISH_VARIANTS) as PublishVariant[]) {
		const name = `${namespace.replace(/[^A-Za-z0-9_-]/g, "_")}_BENCH_RAW_PUBLISH_${variant.toUpperCase()}`;
		const subject = `${namespace}.bench.raw.${variant}`;
		const perRequest = variant === "perRequest";
		if (perRequest && Buffer.byteLength(JSON.stringify(records.slice(0, o.batch))) * 1.1 > nc.info!.max_payload) {
			results[variant] = null; // a request's records do not fit in one message of this server
			continue;
		}
		state.extraStreams.push(name);
		await jsm.streams.add({
			name, subjects: [subject], retention: RetentionPolicy.Workqueue, max_age: nanos(3600_000), storage: StorageType.File,
			discard: DiscardPolicy.New, max_bytes: 2 * 1024 ** 3, duplicate_window: nanos(120_000)
		});
		const conn = variant === "noAsyncTraces" ? await natsConnection(cfg, `credit-mesh-bench-ingest-${process.pid}-nat`, { noAsyncTraces: true }) : nc;
		try {
			const js = conn.jetstream({ timeout: 5000 });
			let sent = 0;
			const publishRequest = perRequest
				? (request: MovementRecord[]) => js.publish(subject, JSON.stringify(request), { msgID: `${name}-${sent++}` })
				: async (request: MovementRecord[]) => {
					for (let i = 0; i < request.length; i += PUBLISH_CHUNK) {
						await Promise.all(request.slice(i, i + PUBLISH_CHUNK).map(r => js.publish(subject, JSON.stringify(r), { msgID: r.movement_id })));
					}
				};
			/** `parallel` workers, each taking the next request's records. */
			const run = async (list: MovementRecord[]) => {
				let next = 0;
				await Promise.all(Array.from({ length: o.parallel }, async () => {
					while (next < list.length) {
						const request = list.slice(next, next + o.batch);
						next += o.batch;
						await publishRequest(request);
					}
				}));
			};
			await run(warm);
			const meter = cpuMeter([], engines);
			const t0 = process.hrtime.bigint();
			await run(records);
			const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
			results[variant] = { seconds, cpu: meter() };
			const expected = perRequest ? Math.ceil(warm.length / o.batch) + Math.ceil(records.length / o.batch) : warm.length + records.length;
			const stored = (await jsm.streams.info(name)).state.messages;
			if (stored !== expected) throw new Error(`raw publish (${variant}): the stream holds ${stored} messages, expected ${expected}`);
		} finally {
			if (conn !== nc) await conn.close();
		}
		await jsm.streams.delete(name);
		state.extraStreams = state.extraStreams.filter(x => x !== name);
	}
	return results;
}
