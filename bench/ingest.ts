// `npm run bench:ingest [-- --movements M --cpfs K --batch B --parallel P --concurrency C --duration D …]`
//
// Base C, ours against the raw engine in one run:
// 1. ingest: the same M movements over K CPFs, POST /api/v1/transactions as NDJSON (HTTP → gateway →
//    JetStream PubAck → transaction-writer's consumer → bulk create → searchable) against
//    `client.helpers.bulk` creating the same documents under the same ids in an index of their own;
// 2. reads: GET /api/v1/activity/:cpf through the gateway against the msearch activity.get runs.
// See bench/README.md.
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Client } from "@elastic/elasticsearch";
import type { NatsConnection } from "nats";
import { type Config, need } from "../config";
import { parseFlags } from "../scripts/args";
import { randomCpf } from "../lib/cpf";
import { pseudonymizer } from "../lib/pii";
import { channel } from "../lib/mesh/streams";
import { shuffled } from "./lib/data";
import { checkInSync, loopbackOnly, prepare } from "./lib/engines";
import { call, createConsumer, expect, revokeConsumer } from "./lib/http";
import { runMain, stopEverything } from "./lib/lifecycle";
import type { BenchState } from "./lib/state";
import { type Watch, measureHttp, measureLoop, observe } from "./lib/measure";
import { deleteStreams, launchMesh, meshWarnings, namespaceStreams, natsConnection, SHAPE_FLAGS, shapeOf, stopMesh } from "./lib/mesh";
import { cpuText, fmt, gitState, gitText, machineInfo, printObservation } from "./lib/report";
import { generateMovements } from "./ingest/dataset";
import { type RunData, checkDocuments, countBySubjects, createRawIndex, dropRunIndices, esText } from "./ingest/elasticsearch";
import { ingestOurs, printIngestOurs } from "./ingest/ours";
import { PUBLISH_VARIANTS, ingestRaw, ingestShaped, publishRaw } from "./ingest/raw";
import { cpuPer, cpuPerText, ingestLabels, publishRows, reportIngest } from "./ingest/report";
import { CONSUMER_DURABLE, PUBLISH_CHUNK, rawActivity } from "./ingest/services";

const ROOT = path.resolve(__dirname, "..");
const READ_WARMUP_SECONDS = 3;

/** Every service, one process per group by default (--split, --one-process); these must be seen before the run goes on. */
const WAIT_FOR = ["api", "consumers", "transaction-ingest", "transaction-writer", "activity-front", "activity"];

const opts = parseFlags(process.argv.slice(2), {
	...SHAPE_FLAGS,
	movements: { type: "number", default: 50_000 },
	cpfs: { type: "number", default: 1000 },
	batch: { type: "number", default: 1000 },
	parallel: { type: "number", default: 4 },
	/** Movements sent (and written raw) before the measurement, to warm both paths up; 0 for none. */
	warmupMovements: { type: "number", default: 2000, min: 0 },
	/** Longest wait for the movements to be searchable, per ingest. */
	ingestTimeout: { type: "number", default: 300 },
	concurrency: { type: "number", default: 16 },
	duration: { type: "number", default: 10 },
	/** The raw side's helpers.bulk: requests in flight and bytes per request (its defaults). */
	rawConcurrency: { type: "number", default: 5 },
	rawFlushBytes: { type: "number", default: 5_000_000 }
});

const LABELS = ingestLabels(opts);

// ------------------------------------------------------------------ state that cleanup() undoes

const state: BenchState & RunData & {
	nc?: NatsConnection;
	/** Streams of this run outside the mesh's (the raw publish). */
	extraStreams: string[];
	cleaning?: Promise<void>;
} = { children: [], extraStreams: [] };

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

async function cleanup(cfg: Config | undefined): Promise<void> {
	state.cleaning ??= (async () => {
		await stopEverything(state); // deletes the mesh's streams too
		if (cfg && state.extraStreams.length) {
			const gone = await removeStreams(cfg).catch(err => (console.error(`could not delete the run's JetStream streams: ${err.message}`), []));
			if (gone.length) console.log(`deleted the JetStream streams ${gone.join(", ")}`);
		}
		if (state.es && state.runPrefix) await dropRunIndices(state.es, state.runPrefix).catch(err => console.error(`could not drop the run's indices (${state.runPrefix}-*): ${err.message}`));
		await state.es?.close().catch(() => undefined);
		await state.nc?.close().catch(() => undefined);
	})();
	return state.cleaning;
}

// ------------------------------------------------------------------ main

let settings: Config | undefined;

async function main(): Promise<void> {
	const machine = machineInfo();
	console.log(`ingest benchmark: ${opts.movements} movements over ${opts.cpfs} CPFs, NDJSON batches of ${opts.batch}, ${opts.parallel} requests in parallel (+${opts.warmupMovements} warm-up movements); ` +
		`reads: concurrency ${opts.concurrency}, ${opts.duration} s per side (+${READ_WARMUP_SECONDS} s warm-up)`);
	console.log(`machine: ${machine.cpus} × ${machine.cpuModel}, ${machine.memGiB} GiB, node ${machine.node}`);
	checkInSync(ROOT, [
		["services/transaction-writer.service.ts", `transactions: { durable: "${CONSUMER_DURABLE}", batchSize: 5, parallel: 2, handler(batch: Delivery<MovementBatch>[]) { return this.writeBatch(batch); } }`],
		["services/transaction-ingest.service.ts", `const RECORDS_PER_MESSAGE = ${PUBLISH_CHUNK};`],
		// The writer's creates (it also deletes what an erasure dropped: none here) and, before them, one search of
		// the recent erasures per batch, which the raw sides do not do (a guarantee of ours, not a client's write).
		["services/transaction-writer.service.ts", "...w.records.flatMap(r => [{ create: { _index: index.movements(), _id: r.movement_id } }, { ...r, received_at: receivedAt }]),"],
		["services/activity.service.ts", `{ index: index.consultations() }, { size: 1, query: bySubject, sort: [{ at: "desc" }], _source: ["at"] },`],
		["services/activity.service.ts", `{ index: index.movements() }, { size: 1, query: { bool: { filter: [bySubject, { term: { tipo: "cartao" } }] } }, sort: NEWEST_MOVEMENTS, _source: ["data", "valor_cents"] },`],
		["services/activity.service.ts", `{ index: index.movements() }, { size: RECENT_MOVEMENTS, query: bySubject, sort: NEWEST_MOVEMENTS, _source: ["tipo", "valor_cents", "data"] }`],
		["lib/base-c/payload-c.ts", "export const RECENT_MOVEMENTS = 20;"],
		["lib/base-c/payload-c.ts", `NEWEST_MOVEMENTS: Record<string, "desc">[] = [{ data: "desc" }, { movement_id: "desc" }];`],
		["middlewares/channels.middleware.ts", "return await js.publish(token === undefined ? subject : `${subject}.${token}`, JSON.stringify(payload), msgID ? { msgID } : undefined);"]
	]);

	const code = gitState(ROOT);
	const { env, cfg } = prepare(ROOT);
	settings = cfg;
	if (opts.batch > cfg.ingestMaxMovements) throw new Error(`--batch ${opts.batch} is more than a request may carry (INGEST_MAX_MOVEMENTS ${cfg.ingestMaxMovements})`);
	const esUrl = new URL(need(cfg, "elasticsearchUrl"));
	loopbackOnly(esUrl, "ELASTICSEARCH_URL");
	// Ours writes into indices of this run's own, new as the raw side's are: the dev mesh's movements index holds
	// what earlier runs left and deleted, and each `create` looks its id up in every segment of it, which cost
	// Elasticsearch ≈ 1.9× the CPU per movement of the raw side's fresh index (issue 15). The raw sides' indices go
	// under it too, and all are dropped at the end.
	const tag = randomBytes(4).toString("hex");
	const prefix = (state.runPrefix = `${cfg.esIndexPrefix}-bench-${tag}`);
	const subjectOf = pseudonymizer(need(cfg, "pseudonymKey"), "activity");
	const adminKey = need(cfg, "adminApiKey");

	// The data, generated once: K distinct CPFs, M movements (and the warm-up's) with ids unique to this run.
	const cpfSet = new Set<string>();
	while (cpfSet.size < opts.cpfs) cpfSet.add(randomCpf());
	const cpfs = [...cpfSet];
	const subjects = cpfs.map(subjectOf);
	const genStart = Date.now();
	const warm = generateMovements(opts.warmupMovements, cpfs, `${tag}-w`, subjectOf, opts.batch);
	const data = generateMovements(opts.movements, cpfs, tag, subjectOf, opts.batch);
	const ndjsonBytes = data.bodies.reduce((a, b) => a + Buffer.byteLength(b), 0);
	console.log(`generated ${opts.movements} movements (+${opts.warmupMovements} warm-up) in ${((Date.now() - genStart) / 1000).toFixed(1)} s: ${data.bodies.length} NDJSON bodies, ${(ndjsonBytes / 2 ** 20).toFixed(1)} MiB`);

	state.es = new Client({ node: esUrl.toString(), requestTimeout: 30_000, maxRetries: 1 });
	const es = state.es;

	const mesh = await launchMesh(state, ROOT, { ...env, ES_INDEX_PREFIX: prefix }, cfg, {
		shape: shapeOf(opts), waitFor: WAIT_FOR,
		acceptPartial: (r: any) => r?.bases?.C?.status === "up" && r?.transporter !== "down"
	});
	const { base, namespace, logFile } = mesh;
	const movementsIndex = `${prefix}-movements`;
	const nc = await nats(cfg);
	const jsm = await nc.jetstreamManager({ timeout: 5000 });
	const stream = channel(namespace, "transactions").name;
	const dlq = channel(namespace, "deadLetters").name;
	// The consumer is created when transaction-writer starts; wait for it (bounded).
	for (let until = Date.now() + 30_000; !(await jsm.consumers.info(stream, CONSUMER_DURABLE).then(() => true, () => false));) {
		if (Date.now() > until) throw new Error(`the consumer ${CONSUMER_DURABLE} on ${stream} did not appear within 30 s`);
		await sleep(200);
	}

	const consumer = await createConsumer(state, base, adminKey, `bench ${namespace}`, ["transactions:write", "activity:read"]);
	const baseline = await countBySubjects(es, movementsIndex, subjects);
	const indexDocsBefore = (await es.count({ index: movementsIndex })).count;
	console.log(`${movementsIndex}: ${indexDocsBefore} documents before the run (${baseline} of them for this run's CPFs)`);
	const watch = (meshProcs: Watch["meshProcs"]): Watch => ({ meshProcs, dataDir: env.CREDIT_MESH_DATA, sessions: {} });
	const ingestArgs = {
		base, key: consumer.key, es, index: movementsIndex, subjects, jsm, stream, dlq, meshProcs: mesh.procs, dataDir: env.CREDIT_MESH_DATA,
		parallel: opts.parallel, ingestTimeout: opts.ingestTimeout
	};

	if (warm.records.length > 0) {
		console.log(`\nwarm-up: ${warm.records.length} movements through the gateway…`);
		await ingestOurs({ ...ingestArgs, bodies: warm.bodies, expected: warm.records.length, target: baseline + warm.records.length });
	}
	console.log(`\n[1/5] ingest, ours: ${opts.movements} movements, ${data.bodies.length} POSTs of ${opts.batch}, ${opts.parallel} in parallel, until searchable…`);
	const oursObs = await observe(watch(mesh.procs), () =>
		ingestOurs({ ...ingestArgs, bodies: data.bodies, expected: data.records.length, target: baseline + warm.records.length + data.records.length }));
	const ours = oursObs.result;
	await checkDocuments(es, movementsIndex, data.records);
	printIngestOurs(ours, opts.movements);
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
	const bulk = { concurrency: opts.rawConcurrency, flushBytes: opts.rawFlushBytes };
	if (warm.records.length > 0) await ingestRaw(es, rawIndex, warm.records, subjects, warm.records.length, bulk);
	const rawObs = await observe(watch([]), () => ingestRaw(es, rawIndex, data.records, subjects, warm.records.length + data.records.length, bulk));
	const raw = rawObs.result;
	await checkDocuments(es, rawIndex, data.records);
	console.log(`  ${fmt(opts.movements / raw.seconds, 0)} movements/s: bulk done in ${fmt(raw.bulkSeconds)} s, searchable after ${fmt(raw.seconds)} s`);
	console.log(`  ${esText(raw.es)}`);
	printObservation(rawObs);
	const perRaw = cpuPer(rawObs.cpu, raw.seconds, opts.movements);
	console.log(`  ${cpuPerText(perRaw)}`);

	console.log(`\n[4/5] raw JetStream publish, then raw es.bulk shaped like the consumer (for what limits ours)…`);
	const publishObs = await observe(watch([]), () => publishRaw(cfg, nc, namespace, warm.records, data.records, env.CREDIT_MESH_DATA, opts, state));
	const publishes = publishRows(publishObs.result, opts.movements, LABELS);
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

	const out = await reportIngest(ROOT, {
		opts, labels: LABELS, machine, code, readWarmupSeconds: READ_WARMUP_SECONDS, ndjsonBytes, indexDocsBefore,
		ours: oursObs, raw: rawObs, publish: publishObs, publishes, shaped: shapedObs, readOurs, readRaw,
		per: { ours: perOurs, raw: perRaw, shaped: perShaped, readOurs: perReadOurs, readRaw: perReadRaw }, warnings
	});
	console.log(gitText(code));
	console.log(`results: ${out}`);
	rmSync(logFile, { force: true }); // kept only when the run fails
}

// Whatever happens, nothing outlives the benchmark for long.
runMain(state, {
	budgetMs: 600_000 + 3 * opts.ingestTimeout * 1000 + 2 * (opts.duration + READ_WARMUP_SECONDS) * 1000,
	main,
	cleanup: () => cleanup(settings)
});
