// The ingest benchmark's report: the paths' labels, CPU per movement (or request), the summary printed
// at the end and bench/results/ingest.json.
import type { CpuReport } from "../lib/cpu";
import type { Observation, SideResult } from "../lib/report";
import { comparisonTable, fmt, type gitState, type machineInfo, noiseWarning, printMeshWarnings, ratioText, sideRatio, table, writeResults } from "../lib/report";
import { type EsDelta, esText } from "./elasticsearch";
import type { OursIngest } from "./ours";
import { PUBLISH_VARIANTS, type PublishVariant, type publishRaw } from "./raw";
import { CONSUMER_BATCH, PUBLISH_CHUNK } from "./services";
import { SHAPE_LABELS, shapeOf } from "../lib/mesh";

/** The run's parameters, as the command line gave them. */
interface IngestParams {
	movements: number; cpfs: number; batch: number; parallel: number; warmupMovements: number;
	concurrency: number; duration: number; rawConcurrency: number; rawFlushBytes: number;
	split?: boolean; oneProcess?: boolean;
}

/** What each path is called in the output and the JSON. */
export function ingestLabels(o: Pick<IngestParams, "rawFlushBytes" | "rawConcurrency">) {
	return {
		ours: "ours: HTTP → gateway → JetStream → consumer → ES bulk, searchable",
		accepted: "  ours, until every 202 was back (accepted)",
		raw: `raw: helpers.bulk create (${(o.rawFlushBytes / 1e6).toFixed(1)} MB × ${o.rawConcurrency} in flight) + refresh, searchable`,
		publish: (v: PublishVariant) => `info: raw JetStream publish, ${PUBLISH_VARIANTS[v]}`,
		shaped: `info: raw es.bulk of the consumer's size (${CONSUMER_BATCH} per request, one at a time; the consumer keeps two in flight) + refresh`,
		readOurs: "GET /api/v1/activity/:cpf (HTTP → gateway → activity → ES msearch)",
		readRaw: "raw msearch (the same 3 searches) + payload C"
	};
}
type IngestLabels = ReturnType<typeof ingestLabels>;

/**
 * CPU per movement (or request), in µs of one core, by process group (from the % of a core over
 * `seconds`): with the machine's cores all busy, no path can go faster than cores × 10⁶ / total per second.
 */
export function cpuPer(c: CpuReport, seconds: number, n: number) {
	const us = (pct: number | null) => Math.round((((pct ?? 0) / 100) * seconds * 1e6) / n * 10) / 10;
	const parts = { mesh: us(c.mesh), nats: us(c.nats), elasticsearch: us(c.elasticsearch), postgres: us(c.postgres), thisProcess: us(c.loadGenerator) };
	return { ...parts, total: Math.round(Object.values(parts).reduce((a, b) => a + b, 0) * 10) / 10 };
}
type CpuPer = ReturnType<typeof cpuPer>;

export const cpuPerText = (p: CpuPer, what = "movement") =>
	`CPU per ${what} ${p.total} µs (mesh ${p.mesh}, nats ${p.nats}, elasticsearch ${p.elasticsearch}, postgres ${p.postgres}, this process ${p.thisProcess})`;

/** The raw publish's variants that ran (one may not fit this server's messages), with their rate and CPU. */
export function publishRows(results: Awaited<ReturnType<typeof publishRaw>>, movements: number, labels: IngestLabels) {
	return Object.entries(results).filter(([, r]) => r).map(([variant, r]) => ({
		variant: variant as PublishVariant, path: labels.publish(variant as PublishVariant), movementsPerSec: movements / r!.seconds, seconds: r!.seconds,
		cpu: r!.cpu, cpuMicrosecondsPerMovement: cpuPer(r!.cpu, r!.seconds, movements)
	}));
}

interface RawIngest { seconds: number; bulkSeconds: number; es: EsDelta }

/** Everything one run measured, for the summary and the JSON. */
interface IngestRun {
	opts: IngestParams;
	labels: IngestLabels;
	machine: ReturnType<typeof machineInfo>;
	code: ReturnType<typeof gitState>;
	readWarmupSeconds: number;
	ndjsonBytes: number;
	indexDocsBefore: number;
	ours: Observation<OursIngest>;
	raw: Observation<RawIngest>;
	publish: Omit<Observation<unknown>, "result">;
	publishes: ReturnType<typeof publishRows>;
	shaped: Observation<RawIngest>;
	readOurs: SideResult;
	readRaw: SideResult;
	/** CPU per movement of each ingest, per request of each read. */
	per: { ours: CpuPer; raw: CpuPer; shaped: CpuPer; readOurs: CpuPer; readRaw: CpuPer };
	warnings: string[];
}

/** The tables, ratios and notes at the end; then the results written to bench/results/ingest.json, whose path is returned. */
export async function reportIngest(root: string, run: IngestRun): Promise<string> {
	const { opts, labels, machine, per, readOurs, readRaw, publishes } = run;
	const ours = run.ours.result;
	const raw = run.raw.result;
	const shaped = run.shaped.result;
	const rate = (seconds: number) => opts.movements / seconds;
	const ratio = {
		ingest: rate(ours.seconds) / rate(raw.seconds),
		accepted: rate(ours.acceptedSeconds) / rate(raw.seconds),
		// A side with failed reads (an engine restarted under it, say) gives no ratio.
		read: readOurs.errors === 0 && readRaw.errors === 0 && readOurs.ok > 0 && readRaw.ok > 0
			? sideRatio(readOurs, readRaw)
			: { reqPerSec: NaN, p50: NaN, p99: NaN }
	};
	console.log(`\nmachine: ${machine.cpus} CPUs (${machine.cpuModel}), node ${machine.node}; M = ${opts.movements} movements over K = ${opts.cpfs} CPFs; batches of ${opts.batch}, ${opts.parallel} in parallel; reads: concurrency ${opts.concurrency}, ${opts.duration} s per side after ${run.readWarmupSeconds} s warm-up\n`);
	console.log(table([
		["ingest", "movements/s", "seconds", "errors"],
		[labels.ours, fmt(rate(ours.seconds), 0), fmt(ours.seconds), String(ours.errors)],
		[labels.accepted, fmt(rate(ours.acceptedSeconds), 0), fmt(ours.acceptedSeconds), ""],
		[labels.raw, fmt(rate(raw.seconds), 0), fmt(raw.seconds), "0"],
		...publishes.map(p => [p.path, fmt(p.movementsPerSec, 0), fmt(p.seconds), "0"]),
		[labels.shaped, fmt(rate(shaped.seconds), 0), fmt(shaped.seconds), "0"]
	]));
	console.log(`\nratio ours/raw: ingest (searchable) ${fmt(ratio.ingest, 3)} (${fmt(ratio.ingest * 100, 1)} %); accepted rate/raw ${fmt(ratio.accepted, 3)}`);
	console.log(`ours: POST latency p50 ${fmt(ours.postP50)} ms, p99 ${fmt(ours.postP99)} ms (${opts.batch} movements each); JetStream had every message at ${fmt(ours.publishedSeconds)} s, all searchable ${fmt(ours.seconds - ours.publishedSeconds)} s later; backlog peak ${ours.backlogPeak} messages, ${ours.redelivered} redelivered`);
	console.log(`ours ${esText(ours.es)}`);
	console.log(`raw  ${esText(raw.es)}`);
	console.log(`ours ${cpuPerText(per.ours)}\nraw  ${cpuPerText(per.raw)}\n`);
	console.log(comparisonTable("activity read", [[labels.readOurs, readOurs], [labels.readRaw, readRaw]]));
	console.log(`ours ${cpuPerText(per.readOurs, "request")}\nraw  ${cpuPerText(per.readRaw, "request")}`);
	if (Number.isNaN(ratio.read.reqPerSec)) console.log("\nno read ratio: a side had failed reads (see the errors column and the warnings)");
	else console.log(`\n${ratioText(ratio.read)}`);
	const shape = shapeOf(opts);
	console.log(`note: the mesh ran as ${SHAPE_LABELS[shape]}${shape === "one-process" ? ": moleculer's preferLocal keeps gateway → service calls in-process; NATS carries JetStream only" : ""}.`);
	const noise = noiseWarning([["ingest ours", run.ours], ["ingest raw", run.raw], ["read ours", readOurs], ["read raw", readRaw]]);
	if (noise) console.log(noise);
	printMeshWarnings(run.warnings);

	const { samples, ...oursRest } = ours;
	return await writeResults(root, "ingest", {
		benchmark: "ingest",
		at: new Date().toISOString(),
		machine,
		code: run.code,
		params: {
			movements: opts.movements, cpfs: opts.cpfs, batch: opts.batch, parallel: opts.parallel, warmupMovements: opts.warmupMovements,
			rawConcurrency: opts.rawConcurrency, rawFlushBytes: opts.rawFlushBytes, consumerBatch: CONSUMER_BATCH, publishChunk: PUBLISH_CHUNK,
			concurrency: opts.concurrency, durationSeconds: opts.duration, readWarmupSeconds: run.readWarmupSeconds, ndjsonBytes: run.ndjsonBytes,
			movementsIndexDocsBefore: run.indexDocsBefore
		},
		ingest: {
			ours: { path: labels.ours, movementsPerSec: rate(ours.seconds), acceptedPerSec: rate(ours.acceptedSeconds), cpuMicrosecondsPerMovement: per.ours, ...oursRest, cpu: run.ours.cpu, idleBefore: run.ours.idleBefore, enginesRestarted: run.ours.enginesRestarted,
				// The stream every 100 ms: seconds since the first POST, messages stored so far (lastSeq), waiting (messages), delivered but not acked.
				stream: samples.map(s => [Math.round(s.t * 1000) / 1000, s.lastSeq, s.messages, s.ackPending]) },
			raw: { path: labels.raw, movementsPerSec: rate(raw.seconds), cpuMicrosecondsPerMovement: per.raw, ...raw, cpu: run.raw.cpu, idleBefore: run.raw.idleBefore, enginesRestarted: run.raw.enginesRestarted },
			rawPublish: { variants: publishes, idleBefore: run.publish.idleBefore },
			rawShaped: { path: labels.shaped, movementsPerSec: rate(shaped.seconds), cpuMicrosecondsPerMovement: per.shaped, ...shaped, cpu: run.shaped.cpu }
		},
		read: [{ path: labels.readOurs, cpuMicrosecondsPerRequest: per.readOurs, ...readOurs }, { path: labels.readRaw, cpuMicrosecondsPerRequest: per.readRaw, ...readRaw }],
		ratio,
		meshWarnings: run.warnings.slice(0, 20)
	});
}
