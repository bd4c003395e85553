// Measuring a side: the work run while CPU by process group and the databases' sessions are watched
// (after a look at the machine with none of our load), and the two sides of a read benchmark.
import { setTimeout as sleep } from "node:timers/promises";
import { cpuMeter, enginePids, restartedEngines } from "./cpu";
import { type WaitProfile, waitSampler } from "./db-waits";
import { revokeConsumer } from "./http";
import type { BenchState } from "./state";
import { closedLoop, httpLoad } from "./load";
import { meshWarnings, stopMesh } from "./mesh";
import { type Observation, type SideResult, printObservation } from "./report";
import { percentiles } from "./stats";
import { natsCounters, trafficBetween } from "./nats-traffic";

/** What is watched while a side runs: the mesh's processes, the engines, the databases' sessions. */
export interface Watch {
	meshProcs: { pid: number; name: string }[];
	/** scripts/engines.sh's data directory (CREDIT_MESH_DATA): the engines' pid files. */
	dataDir: string | undefined;
	/** name → connection string: pg_stat_activity of that database, as that role, every 100 ms. */
	sessions: Record<string, string>;
}

/**
 * Runs work while measuring CPU by process group and the databases' sessions. Two seconds before
 * it, with none of our load running, the same CPU accounting is taken: an engine busy then is
 * serving someone else (another checkout's tests on the same engines, say), which the figures
 * during the run cannot tell apart from our load.
 */
export async function observe<T>(watch: Watch, work: () => Promise<T>): Promise<Observation<T>> {
	const engines = enginePids(watch.dataDir);
	const idleMeter = cpuMeter(watch.meshProcs, engines);
	await sleep(2000);
	const idleBefore = idleMeter();
	const samplers: [string, () => Promise<WaitProfile>][] = [];
	for (const [name, url] of Object.entries(watch.sessions)) {
		try {
			samplers.push([name, await waitSampler(url)]);
		} catch (err) {
			console.warn(`  (no session sampling of ${name}: ${(err as Error).message})`);
		}
	}
	const meter = cpuMeter(watch.meshProcs, engines);
	const natsBefore = await natsCounters();
	const result = await work();
	const cpu = meter();
	const nats = trafficBetween(natsBefore, await natsCounters());
	const db: Record<string, WaitProfile> = {};
	for (const [name, stop] of samplers) db[name] = await stop();
	const enginesRestarted = restartedEngines(engines, enginePids(watch.dataDir));
	return { result, cpu, db, idleBefore, enginesRestarted, nats };
}


function latencyStats(latencies: number[]) {
	return { ...percentiles(latencies), mean: latencies.reduce((a, b) => a + b, 0) / (latencies.length || 1), ok: latencies.length };
}

/** Ours: autocannon over the paths (in the order given), a warm-up run, then the measured one. */
export async function measureHttp(state: BenchState, o: { base: string; key: string; paths: string[]; connections: number; seconds: number; warmupSeconds: number }, watch: Watch): Promise<SideResult> {
	await httpLoad(state, { ...o, seconds: o.warmupSeconds });
	const latencies: number[] = [];
	const { result: r, cpu, db, idleBefore, enginesRestarted, nats } = await observe(watch, async () => await httpLoad(state, { ...o, latencies }));
	state.cannon = undefined;
	return {
		reqPerSec: r.requests.average,
		...latencyStats(latencies),
		errors: r.non2xx + r.errors,
		seconds: r.duration,
		cpu,
		db,
		idleBefore,
		enginesRestarted,
		nats,
		detail: {
			autocannon: {
				requestsPerSecMean: r.requests.average, requestsTotal: r.requests.total,
				latencyP50Ms: r.latency.p50, latencyP99Ms: r.latency.p99, latencyMeanMs: r.latency.average,
				non2xx: r.non2xx, errors: r.errors, timeouts: r.timeouts, statusCodes: r.statusCodeStats
			}
		}
	};
}

/** Raw: a closed loop of `concurrency` workers, a warm-up run, then the measured one, each op timed. */
export async function measureLoop(o: { concurrency: number; seconds: number; warmupSeconds: number }, op: (i: number) => Promise<unknown>, watch: Watch): Promise<SideResult> {
	await closedLoop(o.concurrency, o.warmupSeconds, op);
	const latencies: number[] = [];
	const { result: r, cpu, db, idleBefore, enginesRestarted } = await observe(watch, () => closedLoop(o.concurrency, o.seconds, op, latencies));
	return { reqPerSec: latencies.length / r.seconds, ...latencyStats(latencies), errors: r.errors, seconds: r.seconds, cpu, db, idleBefore, enginesRestarted, detail: { firstErrors: r.firstErrors } };
}

/**
 * The two sides of a read benchmark: the gateway over `paths`, then, with the mesh stopped so it does
 * not compete, the raw engine running `rawOp` as many at a time. Returns both and the mesh's warnings.
 */
export async function measureGatewayThenRaw(state: BenchState, o: {
	gatewayLabel: string; rawLabel: string; base: string; key: string; paths: string[]; rawOp: (i: number) => Promise<unknown>;
	concurrency: number; seconds: number; warmupSeconds: number; watch: (meshProcs: Watch["meshProcs"]) => Watch; meshProcs: Watch["meshProcs"]; logFile: string;
}): Promise<{ gateway: SideResult; raw: SideResult; warnings: string[] }> {
	console.log(`\n[1/2] ${o.gatewayLabel}: ${o.warmupSeconds} s warm-up, then ${o.seconds} s…`);
	const gateway = await measureHttp(state, {
		base: o.base, key: o.key, paths: o.paths, connections: o.concurrency, seconds: o.seconds, warmupSeconds: o.warmupSeconds
	}, o.watch(o.meshProcs));
	printObservation(gateway);

	// Tidy the mesh side up, then stop it so it does not compete with the raw run.
	await revokeConsumer(state);
	await stopMesh(state);
	const warnings = meshWarnings(o.logFile);

	console.log(`\n[2/2] ${o.rawLabel}: ${o.warmupSeconds} s warm-up, then ${o.seconds} s…`);
	const raw = await measureLoop({ concurrency: o.concurrency, seconds: o.seconds, warmupSeconds: o.warmupSeconds }, o.rawOp, o.watch([]));
	printObservation(raw);
	return { gateway, raw, warnings };
}
