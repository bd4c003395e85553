// `npm run bench:ingest [-- --movements M --cpfs K --batch B --parallel P --concurrency C --duration D …]`
//
// Base C, ours against the raw engine in one run:
// 1. ingest: the same M movements over K CPFs, POST /api/v1/transactions as NDJSON (HTTP → gateway →
//    JetStream PubAck → transaction-ingest's consumer → bulk create → searchable) against
//    `client.helpers.bulk` creating the same documents under the same ids in an index of their own;
// 2. reads: GET /api/v1/activity/:cpf through the gateway against the msearch activity.get runs.
// See bench/README.md.
import { randomBytes, randomInt } from "node:crypto";
import { rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Client } from "@elastic/elasticsearch";
import { DiscardPolicy, type JetStreamManager, type NatsConnection, RetentionPolicy, StorageType, nanos } from "nats";
import { type Config, need } from "../config";
import { MAPPINGS } from "../lib/base-c/indices";
import { MOVEMENT_TYPES, type MovementRecord, toRecords, validateMovements } from "../lib/base-c/movement";
import { randomCpf } from "../lib/cpf";
import { formatDate } from "../lib/dates";
import { fromCents } from "../lib/money";
import { pseudonymizer } from "../lib/pii";
import { channel } from "../lib/mesh/streams";
import {
	type BenchState, checkInSync, cpuMeter, type CpuReport, cpuText, createConsumer, deleteStreams, enginePids, expect, call, fmt, gitState, gitText,
	launchMesh, machineInfo, measureHttp, measureLoop, meshWarnings, namespaceStreams, natsConnection, noiseWarning, numberArg, observe, percentile,
	postText, prepare, printObservation, revokeConsumer, runMain, shuffled, type SideResult, sleep, sortedCopy, stopEverything, stopMesh, table,
	type Watch, writeResults
} from "./lib";

const ROOT = path.resolve(__dirname, "..");
const READ_WARMUP_SECONDS = 3;

/** transaction-ingest's consumer: up to 5 messages of 1000 per bulk request (two in flight); checkInSync() watches it. */
const CONSUMER_BATCH = 5000;
/** transaction-ingest.ingest publishes a request's records as messages of this many (RECORDS_PER_MESSAGE). */
const PUBLISH_CHUNK = 1000;
const CONSUMER_DURABLE = "elasticsearch-writer";

/** Everything in dist/services, as `npm start` runs it; these must be seen before the run goes on. */
const WAIT_FOR = ["api", "consumers", "transaction-ingest", "activity"];

const argv = process.argv.slice(2);
const opts = {
	movements: numberArg(argv, "movements", 50_000),
	cpfs: numberArg(argv, "cpfs", 1000),
	batch: numberArg(argv, "batch", 1000),
	parallel: numberArg(argv, "parallel", 4),
	/** Movements sent (and written raw) before the measurement, to warm both paths up; 0 for none. */
	warmupMovements: numberArg(argv, "warmup-movements", 2000, 0),
	/** Longest wait for the movements to be searchable, per ingest. */
	ingestTimeout: numberArg(argv, "ingest-timeout", 300),
	concurrency: numberArg(argv, "concurrency", 16),
	duration: numberArg(argv, "duration", 10),
	/** The raw side's helpers.bulk: requests in flight and bytes per request (its defaults). */
	rawConcurrency: numberArg(argv, "raw-concurrency", 5),
	rawFlushBytes: numberArg(argv, "raw-flush-bytes", 5_000_000)
};

const LABELS = {
	ours: "ours: HTTP → gateway → JetStream → consumer → ES bulk, searchable",
	accepted: "  ours, until every 202 was back (accepted)",
	raw: `raw: helpers.bulk create (${(opts.rawFlushBytes / 1e6).toFixed(1)} MB × ${opts.rawConcurrency} in flight) + refresh, searchable`,
	publish: (v: PublishVariant) => `info: raw JetStream publish, ${PUBLISH_VARIANTS[v]}`,
	shaped: `info: raw es.bulk of the consumer's size (${CONSUMER_BATCH} per request, one at a time; the consumer keeps two in flight) + refresh`,
	readOurs: "GET /api/v1/activity/:cpf (HTTP → gateway → activity → ES msearch)",
	readRaw: "raw msearch (the same 3 searches) + payload C"
};

// ------------------------------------------------------------------ state that cleanup() undoes

const state: BenchState & {
	es?: Client;
	nc?: NatsConnection;
	/** `${prefix}-movements`, where ours writes (the service's index, shared with the dev mesh). */
	movementsIndex?: string;
	/** Ids this run writes to movementsIndex, deleted by id at the end (no _delete_by_query here). */
	ids: string[];
	/** Indices this run created (the raw sides'), dropped at the end. */
	rawIndices: string[];
	/** Streams of this run outside the mesh's (the raw publish). */
	extraStreams: string[];
	cleaning?: Promise<void>;
} = { children: [], ids: [], rawIndices: [], extraStreams: [] };

async function nats(cfg: Config): Promise<NatsConnection> {
	if (!state.nc || state.nc.isClosed()) state.nc = await natsConnection(cfg, `credit-mesh-bench-ingest-${process.pid}`);
	return state.nc;
}

/** This run's streams: the mesh's namespaced ones (TRANSACTIONS, TRANSACTIONS_DLQ, CONSULTATIONS…) and the raw publish's. */
async function removeStreams(cfg: Config): Promise<string[]> {
	const names = [...(state.namespace ? namespaceStreams(state.namespace) : []), ...state.extraStreams];
	if (names.length === 0) return [];
	const deleted = await deleteStreams(await nats(cfg), names);
	state.extraStreams = [];
	return deleted;
}

/** Waits (90 s at most) for Elasticsearch to answer: someone may be restarting it (tests of an outage do). */
async function esAnswering(es: Client): Promise<boolean> {
	for (const until = Date.now() + 90_000; Date.now() < until; await sleep(1000)) {
		// (This node answers GET / with 405, so no es.ping(): the health the services' readiness asks.)
		if (await es.cluster.health({ timeout: "2s" }).then(() => true, () => false)) return true;
	}
	return false;
}

/**
 * Deletes this run's documents from the movements index by id (bulk delete: this Elasticsearch has
 * no _delete_by_query), then drops the raw indices. When Elasticsearch cannot be reached, the ids go
 * to a file, so that they can be deleted later.
 */
async function removeData(): Promise<void> {
	const es = state.es;
	if (!es || (state.ids.length === 0 && state.rawIndices.length === 0)) return;
	if (!(await esAnswering(es))) {
		const file = path.join(os.tmpdir(), `credit-mesh-bench-ingest-${process.pid}.ids`);
		writeFileSync(file, state.ids.join("\n") + "\n");
		throw new Error(`Elasticsearch did not answer for 90 s: the run's ${state.ids.length} movement ids (index ${state.movementsIndex}) are in ${file}; raw indices left: ${state.rawIndices.join(", ") || "none"}`);
	}
	if (state.movementsIndex && state.ids.length > 0) {
		const ids = state.ids.splice(0);
		const index = state.movementsIndex;
		const started = Date.now();
		const stats = await es.helpers.bulk({ datasource: ids, onDocument: (id: string) => ({ delete: { _index: index, _id: id } }), refreshOnCompletion: index, concurrency: 2 });
		console.log(`deleted this run's movements from ${index} by id: ${stats.successful} of ${ids.length} ids found and deleted (${((Date.now() - started) / 1000).toFixed(1)} s)`);
	}
	for (const index of state.rawIndices.splice(0)) {
		await es.indices.delete({ index }, { ignore: [404] });
		console.log(`dropped ${index}`);
	}
}

async function cleanup(cfg: Config | undefined): Promise<void> {
	state.cleaning ??= (async () => {
		await stopEverything(state); // deletes the mesh's streams too
		if (cfg && state.extraStreams.length) {
			const gone = await removeStreams(cfg).catch(err => (console.error(`could not delete the run's JetStream streams: ${err.message}`), []));
			if (gone.length) console.log(`deleted the JetStream streams ${gone.join(", ")}`);
		}
		await removeData().catch(err => console.error(`could not remove the run's Elasticsearch data: ${err.message}`));
		await state.es?.close().catch(() => undefined);
		await state.nc?.close().catch(() => undefined);
	})();
	return state.cleaning;
}

function loopbackOnly(url: URL, name: string): void {
	if (!["127.0.0.1", "localhost", "[::1]"].includes(url.hostname)) throw new Error(`${name} points at ${url.hostname}: this benchmark only talks to 127.0.0.1`);
}

// ------------------------------------------------------------------ the movements, generated once

interface Dataset {
	/** NDJSON bodies of `batch` lines each, as clients send them. */
	bodies: string[];
	/** What the service makes of them (validateMovements + toRecords): the raw side writes these. */
	records: MovementRecord[];
}

const DAY_MS = 86_400_000;

/**
 * n movements spread evenly over the CPFs, tipo and amount at random, a date in the last two years
 * (DD/MM/YYYY, the wire format), and a client id unique to this run (`bench-<tag>-<i>`), so every id
 * is new to the index and the run's documents are exactly the ids computed here.
 */
function generate(n: number, cpfs: string[], tag: string, subjectOf: (cpf: string) => string, batch: number): Dataset {
	const today = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate());
	const items = Array.from({ length: n }, (_, i) => ({
		cpf: cpfs[i % cpfs.length],
		tipo: MOVEMENT_TYPES[randomInt(MOVEMENT_TYPES.length)],
		valor: randomInt(1, 2_000_000) / 100,
		data: formatDate(new Date(today - randomInt(730) * DAY_MS)),
		id: `bench-${tag}-${i}`
	}));
	const { movements, errors } = validateMovements(items);
	if (errors.length > 0) throw new Error(`generated movements fail the service's validation: ${JSON.stringify(errors.slice(0, 3))}`);
	const records = toRecords(movements, subjectOf);
	const bodies: string[] = [];
	for (let i = 0; i < n; i += batch) bodies.push(items.slice(i, i + batch).map(m => JSON.stringify(m)).join("\n"));
	return { bodies, records };
}

// ------------------------------------------------------------------ Elasticsearch helpers

/** Documents of the given subjects in an index, after a refresh. */
async function countBySubjects(es: Client, index: string, subjects: string[]): Promise<number> {
	await es.indices.refresh({ index });
	return (await es.count({ index, query: { terms: { subject: subjects } } })).count;
}

interface EsStats { bulkRequests: number; bulkMs: number; bulkBytes: number; docsIndexed: number; indexingMs: number; refreshes: number }

async function esStats(es: Client, index: string): Promise<EsStats> {
	const res: any = await es.indices.stats({ index, metric: ["bulk", "indexing", "refresh"] });
	const p = res.indices[index].primaries;
	return {
		bulkRequests: p.bulk?.total_operations ?? NaN, bulkMs: p.bulk?.total_time_in_millis ?? NaN, bulkBytes: p.bulk?.total_size_in_bytes ?? NaN,
		docsIndexed: p.indexing.index_total, indexingMs: p.indexing.index_time_in_millis, refreshes: p.refresh.total
	};
}

/** What Elasticsearch did for one ingest: shard-level bulk requests, their size and time, and that time against the wall clock. */
function esDelta(a: EsStats, b: EsStats, wallSeconds: number) {
	const bulkRequests = b.bulkRequests - a.bulkRequests;
	const docs = b.docsIndexed - a.docsIndexed;
	const bulkMs = b.bulkMs - a.bulkMs;
	return {
		bulkRequests, docs, docsPerBulk: docs / bulkRequests, bulkMs, msPerBulk: bulkMs / bulkRequests,
		kibPerBulk: (b.bulkBytes - a.bulkBytes) / bulkRequests / 1024, indexingMs: b.indexingMs - a.indexingMs,
		refreshes: b.refreshes - a.refreshes,
		/** Share of the wall time a bulk request was being executed on the shard (> 100 % when several overlap). */
		bulkBusyPct: (bulkMs / (wallSeconds * 1000)) * 100
	};
}
type EsDelta = ReturnType<typeof esDelta>;

const esText = (d: EsDelta) => `ES: ${d.bulkRequests} bulk requests of ${fmt(d.docsPerBulk, 0)} docs (${fmt(d.kibPerBulk, 0)} KiB), ${fmt(d.msPerBulk, 1)} ms each on the shard, ` +
	`${fmt(d.bulkMs / 1000)} s in bulk = ${fmt(d.bulkBusyPct, 0)} % of the wall time; indexing ${fmt(d.indexingMs / 1000)} s; ${d.refreshes} refreshes`;

/** An index like `${prefix}-movements`: the same mappings (lib/base-c/indices.ts) and the template's settings. */
async function createRawIndex(es: Client, prefix: string, what: string): Promise<string> {
	const index = `${prefix}-bench-raw-${what}-${randomBytes(4).toString("hex")}`;
	state.rawIndices.push(index);
	await es.indices.create({ index, settings: { number_of_shards: 1, number_of_replicas: 0, refresh_interval: "1s" }, mappings: MAPPINGS.movements as any });
	return index;
}

/** The service's bulk body for a batch (transaction-ingest.writeBatch): create under movement_id, received_at once per batch. */
function serviceOperations(index: string, batch: MovementRecord[]): object[] {
	const receivedAt = new Date().toISOString();
	return batch.flatMap(r => [{ create: { _index: index, _id: r.movement_id } }, { ...r, received_at: receivedAt }]);
}

/** A few documents read back by id must be the records, field for field (received_at aside). */
async function checkDocuments(es: Client, index: string, records: MovementRecord[]): Promise<void> {
	const sample = Array.from({ length: 5 }, () => records[randomInt(records.length)]);
	const { docs } = await es.mget<any>({ index, ids: sample.map(r => r.movement_id) });
	docs.forEach((d: any, i) => {
		const { received_at: receivedAt, ...rest } = d._source ?? {};
		if (!d.found || JSON.stringify(rest) !== JSON.stringify(sample[i]) || Number.isNaN(Date.parse(receivedAt))) {
			throw new Error(`${index}: document ${sample[i].movement_id} is not the record:\n es     ${JSON.stringify(d._source)}\n record ${JSON.stringify(sample[i])}`);
		}
	});
}

/**
 * CPU per movement (or request), in µs of one core, by process group (from the % of a core over
 * `seconds`): with the machine's cores all busy, no path can go faster than cores × 10⁶ / total per second.
 */
function cpuPer(c: CpuReport, seconds: number, n: number) {
	const us = (pct: number | null) => Math.round((((pct ?? 0) / 100) * seconds * 1e6) / n * 10) / 10;
	const parts = { mesh: us(c.mesh), nats: us(c.nats), elasticsearch: us(c.elasticsearch), postgres: us(c.postgres), thisProcess: us(c.loadGenerator) };
	return { ...parts, total: Math.round(Object.values(parts).reduce((a, b) => a + b, 0) * 10) / 10 };
}
const cpuPerText = (p: ReturnType<typeof cpuPer>, what = "movement") =>
	`CPU per ${what} ${p.total} µs (mesh ${p.mesh}, nats ${p.nats}, elasticsearch ${p.elasticsearch}, postgres ${p.postgres}, this process ${p.thisProcess})`;

// ------------------------------------------------------------------ ingest, ours

interface StreamSample { t: number; lastSeq: number; messages: number; ackPending: number; redelivered: number }

interface OursIngest {
	seconds: number;
	acceptedSeconds: number;
	requests: number;
	errors: number;
	postP50: number;
	postP99: number;
	/** When JetStream had stored the last message (from 100 ms samples of the stream), s after the start. */
	publishedSeconds: number;
	backlogPeak: number;
	redelivered: number;
	es: EsDelta;
	/** CPU while the 202s were coming back, then while the consumer caught up. */
	cpuAccepting: CpuReport;
	cpuDraining: CpuReport;
	samples: StreamSample[];
}

/**
 * POSTs the bodies with `parallel` concurrent requests, timed from the first request until the
 * movements are searchable: the stream is sampled every 100 ms (what JetStream has stored, what the
 * consumer has yet to ack); once all 202s are back and the stream is empty (work-queue: a message
 * goes when the consumer acks it, after Elasticsearch confirmed it), a refresh and a count by the
 * run's subjects say whether every movement is there (also checked every 2 s regardless).
 */
async function ingestOurs(o: {
	base: string; key: string; bodies: string[]; expected: number; es: Client; index: string; subjects: string[]; target: number;
	jsm: JetStreamManager; stream: string; dlq: string; meshProcs: Watch["meshProcs"]; dataDir: string | undefined;
}): Promise<OursIngest> {
	const before = await o.jsm.streams.info(o.stream);
	const seq0 = before.state.last_seq;
	const stats0 = await esStats(o.es, o.index);
	const latencies: number[] = [];
	const samples: StreamSample[] = [];
	let errors = 0;
	let firstError = "";
	let sampling = true;
	const engines = enginePids(o.dataDir);
	let meter = cpuMeter(o.meshProcs, engines);
	const t0 = process.hrtime.bigint();
	const since = () => Number(process.hrtime.bigint() - t0) / 1e9;

	const sampler = (async () => {
		while (sampling) {
			try {
				const [s, c] = await Promise.all([o.jsm.streams.info(o.stream), o.jsm.consumers.info(o.stream, CONSUMER_DURABLE)]);
				samples.push({ t: since(), lastSeq: s.state.last_seq - seq0, messages: s.state.messages, ackPending: c.num_ack_pending, redelivered: c.num_redelivered });
			} catch {
				// a slow answer: the next sample will do
			}
			await sleep(100);
		}
	})();

	let next = 0;
	await Promise.all(Array.from({ length: opts.parallel }, async () => {
		while (next < o.bodies.length && errors === 0) {
			const body = o.bodies[next++];
			const lines = body.split("\n").length;
			const start = process.hrtime.bigint();
			const res = await postText(o.base, "/api/v1/transactions", o.key, body, "application/x-ndjson").catch(err => ({ status: 0, body: (err as Error).message }));
			if (res.status === 202 && res.body?.accepted === lines) latencies.push(Number(process.hrtime.bigint() - start) / 1e6);
			else {
				errors++;
				firstError ||= `${res.status} ${JSON.stringify(res.body).slice(0, 300)}`;
			}
		}
	}));
	const acceptedSeconds = since();
	const cpuAccepting = meter();
	meter = cpuMeter(o.meshProcs, engines);
	if (errors > 0) {
		sampling = false;
		await sampler;
		throw new Error(`POST /api/v1/transactions: ${errors} request(s) not answered 202 with every movement accepted; first: ${firstError}`);
	}

	const deadline = Date.now() + opts.ingestTimeout * 1000;
	let lastCount = -1;
	let lastCountAt = 0;
	for (;;) {
		const s = await o.jsm.streams.info(o.stream);
		if (s.state.messages === 0 || Date.now() - lastCountAt > 2000) {
			lastCount = await countBySubjects(o.es, o.index, o.subjects);
			lastCountAt = Date.now();
			if (lastCount >= o.target) break;
		}
		if (Date.now() > deadline) {
			const dead = (await o.jsm.streams.info(o.dlq).catch(() => null))?.state.messages ?? "?";
			sampling = false;
			await sampler;
			throw new Error(`not all movements searchable within ${opts.ingestTimeout} s: ${lastCount - (o.target - o.expected)} of ${o.expected}; stream holds ${s.state.messages}, dead letters ${dead}`);
		}
		await sleep(50);
	}
	const seconds = since();
	const cpuDraining = meter();
	sampling = false;
	await sampler;
	if (lastCount !== o.target) console.warn(`  WARNING: ${lastCount - o.target} more documents of the run's subjects than expected (someone else wrote to these CPFs?)`);
	const stats1 = await esStats(o.es, o.index);
	const sorted = sortedCopy(latencies);
	const published = samples.find(s => s.lastSeq >= o.expected);
	return {
		seconds, acceptedSeconds, requests: latencies.length, errors, postP50: percentile(sorted, 50), postP99: percentile(sorted, 99),
		publishedSeconds: published?.t ?? NaN,
		backlogPeak: Math.max(0, ...samples.map(s => s.messages)),
		redelivered: Math.max(0, ...samples.map(s => s.redelivered)),
		es: esDelta(stats0, stats1, seconds),
		cpuAccepting, cpuDraining, samples
	};
}

// ------------------------------------------------------------------ ingest, raw

/**
 * helpers.bulk creating the records under their movement_id (received_at stamped once per 2000, as
 * the consumer does), then a refresh and a count: timed until searchable.
 */
async function ingestRaw(es: Client, index: string, records: MovementRecord[], subjects: string[], target: number) {
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
		concurrency: opts.rawConcurrency,
		flushBytes: opts.rawFlushBytes,
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
async function ingestShaped(es: Client, index: string, records: MovementRecord[], subjects: string[], target: number) {
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
const PUBLISH_VARIANTS = {
	service: "a message per movement, msgID, ≤1000 in flight (the service's first design)",
	noAsyncTraces: "the same on a connection with noAsyncTraces: true",
	perRequest: "one message per request (the records as a JSON array; the service does this per 1000)"
} as const;
type PublishVariant = keyof typeof PUBLISH_VARIANTS;

/**
 * JetStream alone: the records published as transaction-ingest.ingest does (JSON, msgID = movement_id,
 * each "request" of `batch` records in chunks of PUBLISH_CHUNK, all of a chunk in flight, `parallel`
 * requests at a time) to a stream configured like the mesh's TRANSACTIONS (file, work queue,
 * duplicate window 120 s), until every PubAck is back; then the same from a connection made with
 * nats.js's `noAsyncTraces` (no stack captured per request), and one message per request. Each
 * variant has a stream of its own (the same msgIDs twice would be deduplicated), after a warm-up.
 */
async function publishRaw(cfg: Config, nc: NatsConnection, namespace: string, warm: MovementRecord[], records: MovementRecord[], dataDir: string | undefined) {
	const jsm = await nc.jetstreamManager({ timeout: 5000 });
	const engines = enginePids(dataDir);
	const results = {} as Record<PublishVariant, { seconds: number; cpu: CpuReport } | null>;
	for (const variant of Object.keys(PUBLISH_VARIANTS) as PublishVariant[]) {
		const name = `${namespace.replace(/[^A-Za-z0-9_-]/g, "_")}_BENCH_RAW_PUBLISH_${variant.toUpperCase()}`;
		const subject = `${namespace}.bench.raw.${variant}`;
		const perRequest = variant === "perRequest";
		if (perRequest && Buffer.byteLength(JSON.stringify(records.slice(0, opts.batch))) * 1.1 > nc.info!.max_payload) {
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
				await Promise.all(Array.from({ length: opts.parallel }, async () => {
					while (next < list.length) {
						const request = list.slice(next, next + opts.batch);
						next += opts.batch;
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
			const expected = perRequest ? Math.ceil(warm.length / opts.batch) + Math.ceil(records.length / opts.batch) : warm.length + records.length;
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

// ------------------------------------------------------------------ activity, raw

/** activity.get's msearch (services/activity.service.ts), the same three searches; checkInSync() watches them. */
function activitySearches(prefix: string, subject: string) {
	const bySubject = { term: { subject } };
	return [
		{ index: `${prefix}-consultations` }, { size: 1, query: bySubject, sort: [{ at: "desc" }], _source: ["at"] },
		{ index: `${prefix}-movements` }, { size: 1, query: { bool: { filter: [bySubject, { term: { tipo: "cartao" } }] } }, sort: [{ data: "desc" }, { movement_id: "desc" }], _source: ["data", "valor_cents"] },
		{ index: `${prefix}-movements` }, { size: 20, query: bySubject, sort: [{ data: "desc" }, { movement_id: "desc" }], _source: ["tipo", "valor_cents", "data"] }
	];
}

/** The msearch, then payload C built from it as activity.get builds it. */
async function rawActivity(es: Client, prefix: string, subjectOf: (cpf: string) => string, cpf: string) {
	const { responses } = await es.msearch({ searches: activitySearches(prefix, subjectOf(cpf)) as any });
	for (const r of responses as any[]) if (r.error) throw new Error(r.error.type);
	const [consultation, card, recent] = (responses as any[]).map(r => r.hits.hits.map((h: any) => h._source));
	if (consultation.length === 0 && recent.length === 0) throw new Error("no activity for this CPF");
	return {
		cpf,
		ultimaConsulta: consultation[0] ? formatDate(new Date(consultation[0].at)) : null,
		ultimaCompraCC: card[0] ? { data: formatDate(card[0].data), valor: fromCents(card[0].valor_cents) } : null,
		movimentacaoFinanceira: recent.map((m: any) => ({ tipo: m.tipo, valor: fromCents(m.valor_cents), data: formatDate(m.data) }))
	};
}

// ------------------------------------------------------------------ main

let settings: Config | undefined;

async function main(): Promise<void> {
	const machine = machineInfo();
	console.log(`ingest benchmark: ${opts.movements} movements over ${opts.cpfs} CPFs, NDJSON batches of ${opts.batch}, ${opts.parallel} requests in parallel (+${opts.warmupMovements} warm-up movements); ` +
		`reads: concurrency ${opts.concurrency}, ${opts.duration} s per side (+${READ_WARMUP_SECONDS} s warm-up)`);
	console.log(`machine: ${machine.cpus} × ${machine.cpuModel}, ${machine.memGiB} GiB, node ${machine.node}`);
	checkInSync(ROOT, [
		["services/transaction-ingest.service.ts", `transactions: { durable: "${CONSUMER_DURABLE}", batchSize: 5, parallel: 2, handler(batch: Delivery<MovementBatch>[]) { return this.writeBatch(batch); } }`],
		["services/transaction-ingest.service.ts", `const RECORDS_PER_MESSAGE = ${PUBLISH_CHUNK};`],
		["services/transaction-ingest.service.ts", "operations: work.flatMap(w => w.records.flatMap(r => [{ create: { _index: index.movements(), _id: r.movement_id } }, { ...r, received_at: receivedAt }]))"],
		["services/activity.service.ts", `{ index: index.consultations() }, { size: 1, query: bySubject, sort: [{ at: "desc" }], _source: ["at"] },`],
		["services/activity.service.ts", `{ index: index.movements() }, { size: 1, query: { bool: { filter: [bySubject, { term: { tipo: "cartao" } }] } }, sort: [{ data: "desc" }, { movement_id: "desc" }], _source: ["data", "valor_cents"] },`],
		["services/activity.service.ts", `{ index: index.movements() }, { size: RECENT_MOVEMENTS, query: bySubject, sort: [{ data: "desc" }, { movement_id: "desc" }], _source: ["tipo", "valor_cents", "data"] }`],
		["services/activity.service.ts", "const RECENT_MOVEMENTS = 20;"],
		["middlewares/channels.middleware.ts", "return await js.publish(subject, JSON.stringify(payload), msgID ? { msgID } : undefined);"]
	]);

	const code = gitState(ROOT);
	const { env, cfg } = prepare(ROOT);
	settings = cfg;
	if (opts.batch > cfg.ingestMaxMovements) throw new Error(`--batch ${opts.batch} is more than a request may carry (INGEST_MAX_MOVEMENTS ${cfg.ingestMaxMovements})`);
	const esUrl = new URL(need(cfg, "elasticsearchUrl"));
	loopbackOnly(esUrl, "ELASTICSEARCH_URL");
	const prefix = cfg.esIndexPrefix;
	const subjectOf = pseudonymizer(need(cfg, "pseudonymKey"), "activity");
	const adminKey = need(cfg, "adminApiKey");

	// The data, generated once: K distinct CPFs, M movements (and the warm-up's) with ids unique to this run.
	const tag = randomBytes(4).toString("hex");
	const cpfSet = new Set<string>();
	while (cpfSet.size < opts.cpfs) cpfSet.add(randomCpf());
	const cpfs = [...cpfSet];
	const subjects = cpfs.map(subjectOf);
	const genStart = Date.now();
	const warm = generate(opts.warmupMovements, cpfs, `${tag}-w`, subjectOf, opts.batch);
	const data = generate(opts.movements, cpfs, tag, subjectOf, opts.batch);
	const ndjsonBytes = data.bodies.reduce((a, b) => a + Buffer.byteLength(b), 0);
	console.log(`generated ${opts.movements} movements (+${opts.warmupMovements} warm-up) in ${((Date.now() - genStart) / 1000).toFixed(1)} s: ${data.bodies.length} NDJSON bodies, ${(ndjsonBytes / 2 ** 20).toFixed(1)} MiB`);

	state.es = new Client({ node: esUrl.toString(), requestTimeout: 30_000, maxRetries: 1 });
	const es = state.es;

	const mesh = await launchMesh(state, ROOT, env, cfg, {
		split: false, waitFor: WAIT_FOR,
		acceptPartial: (r: any) => r?.bases?.C?.status === "up" && r?.transporter !== "down"
	});
	const { base, namespace, logFile } = mesh;
	const movementsIndex = (state.movementsIndex = `${prefix}-movements`);
	const nc = await nats(cfg);
	const jsm = await nc.jetstreamManager({ timeout: 5000 });
	const stream = channel(namespace, "transactions").name;
	const dlq = channel(namespace, "deadLetters").name;
	// The consumer is created when transaction-ingest starts; wait for it (bounded).
	for (let until = Date.now() + 30_000; !(await jsm.consumers.info(stream, CONSUMER_DURABLE).then(() => true, () => false));) {
		if (Date.now() > until) throw new Error(`the consumer ${CONSUMER_DURABLE} on ${stream} did not appear within 30 s`);
		await sleep(200);
	}

	const consumer = await createConsumer(state, base, adminKey, `bench ${namespace}`, ["transactions:write", "activity:read"]);
	const baseline = await countBySubjects(es, movementsIndex, subjects);
	const indexDocsBefore = (await es.count({ index: movementsIndex })).count;
	console.log(`${movementsIndex}: ${indexDocsBefore} documents before the run (${baseline} of them for this run's CPFs)`);
	state.ids.push(...warm.records.map(r => r.movement_id), ...data.records.map(r => r.movement_id));
	const watch = (meshProcs: Watch["meshProcs"]): Watch => ({ meshProcs, dataDir: env.CREDIT_MESH_DATA, sessions: {} });
	const ingestArgs = { base, key: consumer.key, es, index: movementsIndex, subjects, jsm, stream, dlq, meshProcs: mesh.procs, dataDir: env.CREDIT_MESH_DATA };

	if (warm.records.length > 0) {
		console.log(`\nwarm-up: ${warm.records.length} movements through the gateway…`);
		await ingestOurs({ ...ingestArgs, bodies: warm.bodies, expected: warm.records.length, target: baseline + warm.records.length });
	}
	console.log(`\n[1/5] ingest, ours: ${opts.movements} movements, ${data.bodies.length} POSTs of ${opts.batch}, ${opts.parallel} in parallel, until searchable…`);
	const oursObs = await observe(watch(mesh.procs), () =>
		ingestOurs({ ...ingestArgs, bodies: data.bodies, expected: data.records.length, target: baseline + warm.records.length + data.records.length }));
	const ours = oursObs.result;
	await checkDocuments(es, movementsIndex, data.records);
	printIngestOurs(ours);
	printObservation(oursObs);
	const perOurs = cpuPer(oursObs.cpu, ours.seconds, opts.movements);
	console.log(`  ${cpuPerText(perOurs)}`);

	// Reads: both sides answer the same for one CPF first.
	const sampleCpf = cpfs[0];
	const sample = expect(await call(base, "GET", `/api/v1/activity/${sampleCpf}`, consumer.key), 200, "GET /api/v1/activity/:cpf");
	const rawSample = await rawActivity(es, prefix, subjectOf, sampleCpf);
	if (JSON.stringify(sample) !== JSON.stringify(rawSample)) {
		throw new Error(`the raw msearch does not reproduce the gateway's answer:\n gateway ${JSON.stringify(sample)}\n raw     ${JSON.stringify(rawSample)}`);
	}
	console.log(`\n[2/5] ${LABELS.readOurs}: ${opts.concurrency} connections, ${READ_WARMUP_SECONDS} s warm-up, then ${opts.duration} s…`);
	const readOurs = await measureHttp(state, {
		base, key: consumer.key, paths: shuffled(cpfs).map(cpf => `/api/v1/activity/${cpf}`),
		connections: opts.concurrency, seconds: opts.duration, warmupSeconds: READ_WARMUP_SECONDS
	}, watch(mesh.procs));
	printObservation(readOurs);
	const perReadOurs = cpuPer(readOurs.cpu, readOurs.seconds, readOurs.ok);
	console.log(`  ${cpuPerText(perReadOurs, "request")}`);

	// The mesh is done: stop it so it does not compete with the raw runs, then remove its streams.
	await revokeConsumer(state);
	await stopMesh(state);
	const warnings = meshWarnings(logFile);
	const goneStreams = await removeStreams(cfg);
	console.log(`\nmesh stopped; deleted the JetStream streams ${goneStreams.join(", ")}`);

	console.log(`\n[3/5] ingest, raw: helpers.bulk into a new index, ${opts.rawConcurrency} requests of ${(opts.rawFlushBytes / 1e6).toFixed(1)} MB in flight, until searchable…`);
	const rawIndex = await createRawIndex(es, prefix, "bulk");
	if (warm.records.length > 0) await ingestRaw(es, rawIndex, warm.records, subjects, warm.records.length);
	const rawObs = await observe(watch([]), () => ingestRaw(es, rawIndex, data.records, subjects, warm.records.length + data.records.length));
	const raw = rawObs.result;
	await checkDocuments(es, rawIndex, data.records);
	console.log(`  ${fmt(opts.movements / raw.seconds, 0)} movements/s: bulk done in ${fmt(raw.bulkSeconds)} s, searchable after ${fmt(raw.seconds)} s`);
	console.log(`  ${esText(raw.es)}`);
	printObservation(rawObs);
	const perRaw = cpuPer(rawObs.cpu, raw.seconds, opts.movements);
	console.log(`  ${cpuPerText(perRaw)}`);

	console.log(`\n[4/5] raw JetStream publish, then raw es.bulk shaped like the consumer (for what limits ours)…`);
	const publishObs = await observe(watch([]), () => publishRaw(cfg, nc, namespace, warm.records, data.records, env.CREDIT_MESH_DATA));
	const publishes = Object.entries(publishObs.result).filter(([, r]) => r).map(([variant, r]) => ({
		variant: variant as PublishVariant, path: LABELS.publish(variant as PublishVariant), movementsPerSec: opts.movements / r!.seconds, seconds: r!.seconds,
		cpu: r!.cpu, cpuMicrosecondsPerMovement: cpuPer(r!.cpu, r!.seconds, opts.movements)
	}));
	for (const p of publishes) {
		console.log(`  publish, ${PUBLISH_VARIANTS[p.variant]}: ${fmt(p.movementsPerSec, 0)} movements/s (${fmt(p.seconds)} s)`);
		console.log(`    cpu: ${cpuText(p.cpu)}`);
		console.log(`    ${cpuPerText(p.cpuMicrosecondsPerMovement)}`);
	}
	const shapedIndex = await createRawIndex(es, prefix, "shaped");
	if (warm.records.length > 0) await ingestShaped(es, shapedIndex, warm.records, subjects, warm.records.length);
	const shapedObs = await observe(watch([]), () => ingestShaped(es, shapedIndex, data.records, subjects, warm.records.length + data.records.length));
	const shaped = shapedObs.result;
	console.log(`  shaped bulk: ${fmt(opts.movements / shaped.seconds, 0)} movements/s (bulk ${fmt(shaped.bulkSeconds)} s, searchable ${fmt(shaped.seconds)} s)`);
	console.log(`  ${esText(shaped.es)}`);
	console.log(`  cpu: ${cpuText(shapedObs.cpu)}`);
	const perShaped = cpuPer(shapedObs.cpu, shaped.seconds, opts.movements);
	console.log(`  ${cpuPerText(perShaped)}`);

	console.log(`\n[5/5] ${LABELS.readRaw}: ${opts.concurrency} closed-loop workers, ${READ_WARMUP_SECONDS} s warm-up, then ${opts.duration} s…`);
	const order = shuffled(cpfs);
	const readRaw = await measureLoop({ concurrency: opts.concurrency, seconds: opts.duration, warmupSeconds: READ_WARMUP_SECONDS },
		i => rawActivity(es, prefix, subjectOf, order[i % order.length]), watch([]));
	printObservation(readRaw);
	const perReadRaw = cpuPer(readRaw.cpu, readRaw.seconds, readRaw.ok);
	console.log(`  ${cpuPerText(perReadRaw, "request")}`);

	console.log("");
	await removeData();
	const remaining = await countBySubjects(es, movementsIndex, subjects);
	if (remaining !== baseline) console.warn(`WARNING: ${remaining} documents of the run's CPFs remain in ${movementsIndex} (${baseline} before the run)`);

	// ---------------------------------------------------------------- report
	const rate = (seconds: number) => opts.movements / seconds;
	const ratio = {
		ingest: rate(ours.seconds) / rate(raw.seconds),
		accepted: rate(ours.acceptedSeconds) / rate(raw.seconds),
		// A side with failed reads (an engine restarted under it, say) gives no ratio.
		read: readOurs.errors === 0 && readRaw.errors === 0 && readOurs.ok > 0 && readRaw.ok > 0
			? { reqPerSec: readOurs.reqPerSec / readRaw.reqPerSec, p50: readOurs.p50 / readRaw.p50, p99: readOurs.p99 / readRaw.p99 }
			: { reqPerSec: NaN, p50: NaN, p99: NaN }
	};
	console.log(`\nmachine: ${machine.cpus} CPUs (${machine.cpuModel}), node ${machine.node}; M = ${opts.movements} movements over K = ${opts.cpfs} CPFs; batches of ${opts.batch}, ${opts.parallel} in parallel; reads: concurrency ${opts.concurrency}, ${opts.duration} s per side after ${READ_WARMUP_SECONDS} s warm-up\n`);
	console.log(table([
		["ingest", "movements/s", "seconds", "errors"],
		[LABELS.ours, fmt(rate(ours.seconds), 0), fmt(ours.seconds), String(ours.errors)],
		[LABELS.accepted, fmt(rate(ours.acceptedSeconds), 0), fmt(ours.acceptedSeconds), ""],
		[LABELS.raw, fmt(rate(raw.seconds), 0), fmt(raw.seconds), "0"],
		...publishes.map(p => [p.path, fmt(p.movementsPerSec, 0), fmt(p.seconds), "0"]),
		[LABELS.shaped, fmt(rate(shaped.seconds), 0), fmt(shaped.seconds), "0"]
	]));
	console.log(`\nratio ours/raw: ingest (searchable) ${fmt(ratio.ingest, 3)} (${fmt(ratio.ingest * 100, 1)} %); accepted rate/raw ${fmt(ratio.accepted, 3)}`);
	console.log(`ours: POST latency p50 ${fmt(ours.postP50)} ms, p99 ${fmt(ours.postP99)} ms (${opts.batch} movements each); JetStream had every message at ${fmt(ours.publishedSeconds)} s, all searchable ${fmt(ours.seconds - ours.publishedSeconds)} s later; backlog peak ${ours.backlogPeak} messages, ${ours.redelivered} redelivered`);
	console.log(`ours ${esText(ours.es)}`);
	console.log(`raw  ${esText(raw.es)}`);
	console.log(`ours ${cpuPerText(perOurs)}\nraw  ${cpuPerText(perRaw)}\n`);
	const row = (label: string, s: SideResult) => [label, fmt(s.reqPerSec, 0), fmt(s.p50), fmt(s.p99), String(s.errors)];
	console.log(table([["activity read", "req/s", "p50 ms", "p99 ms", "errors"], row(LABELS.readOurs, readOurs), row(LABELS.readRaw, readRaw)]));
	console.log(`ours ${cpuPerText(perReadOurs, "request")}\nraw  ${cpuPerText(perReadRaw, "request")}`);
	if (Number.isNaN(ratio.read.reqPerSec)) console.log("\nno read ratio: a side had failed reads (see the errors column and the warnings)");
	else console.log(`\nratio ours/raw: req/s ${fmt(ratio.read.reqPerSec, 3)} (${fmt(ratio.read.reqPerSec * 100, 1)} %), p50 latency ${fmt(ratio.read.p50)}×, p99 latency ${fmt(ratio.read.p99)}×`);
	console.log("note: the mesh runs in one process (all of dist/services): moleculer's preferLocal keeps gateway → service calls in-process; NATS carries JetStream only.");
	const noise = noiseWarning([["ingest ours", oursObs], ["ingest raw", rawObs], ["read ours", readOurs], ["read raw", readRaw]]);
	if (noise) console.log(noise);
	if (warnings.length) console.log(`\nthe mesh logged ${warnings.length} warning/error line(s); first: ${warnings[0].slice(0, 300)}`);

	const { samples, ...oursRest } = ours;
	const out = writeResults(ROOT, "ingest", {
		benchmark: "ingest",
		at: new Date().toISOString(),
		machine,
		code,
		params: {
			movements: opts.movements, cpfs: opts.cpfs, batch: opts.batch, parallel: opts.parallel, warmupMovements: opts.warmupMovements,
			rawConcurrency: opts.rawConcurrency, rawFlushBytes: opts.rawFlushBytes, consumerBatch: CONSUMER_BATCH, publishChunk: PUBLISH_CHUNK,
			concurrency: opts.concurrency, durationSeconds: opts.duration, readWarmupSeconds: READ_WARMUP_SECONDS, ndjsonBytes,
			movementsIndexDocsBefore: indexDocsBefore
		},
		ingest: {
			ours: { path: LABELS.ours, movementsPerSec: rate(ours.seconds), acceptedPerSec: rate(ours.acceptedSeconds), cpuMicrosecondsPerMovement: perOurs, ...oursRest, cpu: oursObs.cpu, idleBefore: oursObs.idleBefore, enginesRestarted: oursObs.enginesRestarted,
				// The stream every 100 ms: seconds since the first POST, messages stored so far (lastSeq), waiting (messages), delivered but not acked.
				stream: samples.map(s => [Math.round(s.t * 1000) / 1000, s.lastSeq, s.messages, s.ackPending]) },
			raw: { path: LABELS.raw, movementsPerSec: rate(raw.seconds), cpuMicrosecondsPerMovement: perRaw, ...raw, cpu: rawObs.cpu, idleBefore: rawObs.idleBefore, enginesRestarted: rawObs.enginesRestarted },
			rawPublish: { variants: publishes, idleBefore: publishObs.idleBefore },
			rawShaped: { path: LABELS.shaped, movementsPerSec: rate(shaped.seconds), cpuMicrosecondsPerMovement: perShaped, ...shaped, cpu: shapedObs.cpu }
		},
		read: [{ path: LABELS.readOurs, cpuMicrosecondsPerRequest: perReadOurs, ...readOurs }, { path: LABELS.readRaw, cpuMicrosecondsPerRequest: perReadRaw, ...readRaw }],
		ratio,
		meshWarnings: warnings.slice(0, 20)
	});
	console.log(gitText(code));
	console.log(`results: ${out}`);
	rmSync(logFile, { force: true }); // kept only when the run fails
}

function printIngestOurs(o: OursIngest): void {
	console.log(`  ${fmt(opts.movements / o.seconds, 0)} movements/s searchable after ${fmt(o.seconds)} s; every 202 back after ${fmt(o.acceptedSeconds)} s (${fmt(opts.movements / o.acceptedSeconds, 0)} movements/s accepted)`);
	console.log(`  POST p50 ${fmt(o.postP50)} ms, p99 ${fmt(o.postP99)} ms; JetStream had every message at ${fmt(o.publishedSeconds)} s (${fmt(o.seconds - o.publishedSeconds)} s before all were searchable); backlog peak ${o.backlogPeak}; redelivered ${o.redelivered}`);
	console.log(`  ${esText(o.es)}`);
	console.log(`  cpu while accepting (0–${fmt(o.acceptedSeconds, 1)} s): ${cpuText(o.cpuAccepting)}`);
	console.log(`  cpu while draining (${fmt(o.acceptedSeconds, 1)}–${fmt(o.seconds, 1)} s): ${cpuText(o.cpuDraining)}`);
}

// Whatever happens, nothing outlives the benchmark for long.
runMain(state, {
	budgetMs: 600_000 + 3 * opts.ingestTimeout * 1000 + 2 * (opts.duration + READ_WARMUP_SECONDS) * 1000,
	main,
	cleanup: () => cleanup(settings)
});
