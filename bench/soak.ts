// `npm run bench:soak -- --seconds 120 --clients 16`: the mixed workload (bench/workload.ts) through the
// gateway against the mesh split by service group as docker-stack.yml deploys it, for a bounded time;
// per-route throughput, latency, errors and statuses, and every process's memory sampled during the
// run, with the slope of its second half (a leak shows as a steady climb). Not a ratio benchmark: there
// is no raw side. Options: --seconds S (120), --clients C (16), --seed N (random), --sample-seconds K (5),
// --keep-data (do not erase the run's CPFs afterwards).
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Config } from "../config";
import { SERVICE_GROUPS } from "../config/groups";
import { parseFlags } from "../scripts/args";
import { type CpuReport, type EnginePids, cpuMeter, enginePids, memoryOf } from "./lib/cpu";
import { prepare } from "./lib/engines";
import { createConsumer } from "./lib/http";
import { runMain, stopEverything } from "./lib/lifecycle";
import type { BenchState } from "./lib/state";
import { type MeshProc, launchMesh, meshWarnings, observerBroker } from "./lib/mesh";
import { cpuText, fmt, gitState, gitText, machineInfo, table, writeResults } from "./lib/report";
import { WORKLOAD_SCOPES, type WorkloadResult, runWorkload } from "./workload";

const ROOT = path.resolve(__dirname, "..");
const opts = parseFlags(process.argv.slice(2), {
	seconds: { type: "number", default: 120 },
	clients: { type: "number", default: 16 },
	/** Random unless given. */
	seed: { type: "number", min: 0 },
	sampleSeconds: { type: "number", default: 5 },
	keepData: { type: "boolean" }
});

/** The service groups of docker-stack.yml, one moleculer-runner each (SERVICES=<group>). */
const GROUPS: Record<string, readonly string[]> = SERVICE_GROUPS;
const ALL_SERVICES = Object.values(GROUPS).flat();

const state: BenchState = { children: [] };
let cleaning: Promise<void> | undefined;
const cleanup = () => (cleaning ??= stopEverything(state));

// ------------------------------------------------------------------ memory over time

interface Series { name: string; pid: number; samples: { tMs: number; rssMiB: number }[]; hwmMiB: number | null }

/** The samples taken while the load ran (up to loadEndMs) of which the second half. */
function secondHalf(s: Series, loadEndMs: number) {
	const during = s.samples.filter(p => p.tMs <= loadEndMs);
	return during.slice(Math.floor(during.length / 2));
}

/** Least-squares slope of RSS over the second half of the load, MiB per minute. */
function slopeSecondHalf(s: Series, loadEndMs: number): number {
	const pts = secondHalf(s, loadEndMs);
	if (pts.length < 3) return NaN;
	const xs = pts.map(p => p.tMs / 60_000);
	const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
	const my = pts.reduce((a, p) => a + p.rssMiB, 0) / pts.length;
	let num = 0;
	let den = 0;
	pts.forEach((p, i) => {
		num += (xs[i] - mx) * (p.rssMiB - my);
		den += (xs[i] - mx) ** 2;
	});
	return den > 0 ? num / den : NaN;
}

function sampler(procs: { name: string; pid: number }[], everyMs: number): { t0: number; stop: () => Series[] } {
	const t0 = Date.now();
	const series: Series[] = procs.map(p => ({ ...p, samples: [], hwmMiB: null }));
	const take = () => {
		for (const s of series) {
			const m = memoryOf(s.pid);
			if (m) {
				s.samples.push({ tMs: Date.now() - t0, rssMiB: m.rssMiB });
				s.hwmMiB = m.hwmMiB;
			}
		}
	};
	take();
	const timer = setInterval(take, everyMs);
	return { t0, stop: () => (clearInterval(timer), take(), series) };
}

/**
 * The JS heap in use of every mesh process, from `$node.health` over the transporter (an observer
 * node on the mesh's namespace), every everyMs: the heap is a sawtooth (garbage accumulates between
 * collections), so what tells a leak is its floor — the lowest value in each quarter of the load —
 * rising, not any one sample.
 */
async function heapSampler(cfg: Config & { transporter: string }, namespace: string, procs: { name: string; pid: number }[], t0: number, everyMs: number) {
	const broker = observerBroker(namespace, "soak-observer", cfg);
	state.observer = broker;
	await broker.start();
	await broker.waitForServices(ALL_SERVICES, 20_000, 200);
	const series = new Map<string, HeapSample[]>(procs.map(p => [p.name, []]));
	const mib = (bytes: unknown) => (typeof bytes === "number" ? Math.round((bytes / 2 ** 20) * 10) / 10 : NaN);
	let stopped = false;
	const loop = (async () => {
		while (!stopped) {
			const nodes = (broker.registry.nodes.list({ onlyAvailable: true, withServices: false }) as { id: string; local: boolean }[]).filter(n => !n.local);
			await Promise.all(nodes.map(async n => {
				const h: any = await broker.call("$node.health", {}, { nodeID: n.id, timeout: 3000 }).catch(() => null);
				const name = procs.find(p => p.pid === h?.process?.pid)?.name;
				const m = h?.process?.memory;
				if (name && typeof m?.heapUsed === "number") {
					series.get(name)!.push({ tMs: Date.now() - t0, heapMiB: mib(m.heapUsed), heapTotalMiB: mib(m.heapTotal), externalMiB: mib(m.external), arrayBuffersMiB: mib(m.arrayBuffers) });
				}
			}));
			await sleep(everyMs);
		}
	})();
	return {
		stop: async () => {
			stopped = true;
			await loop;
			await broker.stop().catch(() => undefined);
			state.observer = undefined;
			return series;
		}
	};
}

/** process.memoryUsage() of a mesh process (heapUsed as heapMiB), MiB. */
interface HeapSample { tMs: number; heapMiB: number; heapTotalMiB: number; externalMiB: number; arrayBuffersMiB: number }

/** The lowest heap sample in each quarter of the load. */
function heapFloors(samples: HeapSample[], loadEndMs: number): number[] {
	return [0, 1, 2, 3].map(q => Math.min(...samples.filter(p => p.tMs >= (q * loadEndMs) / 4 && p.tMs < ((q + 1) * loadEndMs) / 4).map(p => p.heapMiB)));
}

/**
 * Flagged: RSS climbing more than LEAK_SLOPE MiB/min in the second half of the load, by more than 5 MiB
 * and 5 % of its start, with the heap floor rising too (or not measured: the engines). The 5 % spares
 * Elasticsearch, whose JVM touches pages of its fixed heap for a long time (≈ 15 MiB of 1.4 GiB in 8 min).
 */
const LEAK_SLOPE = 2;
/**
 * Below this much load nothing is flagged: every Node process here grows its heap for the first minutes
 * (60 s runs flagged three processes whose 480 s runs then stayed flat).
 */
const MIN_JUDGE_SECONDS = 240;

// ------------------------------------------------------------------ erasing the run's data

/**
 * DELETE /privacy/:cpf (admin key) for every CPF the run wrote, 16 at a time, ERASE_SECONDS at most
 * (≈ 16 erasures/s here, against up to ≈ 13 persons created per second of load);
 * an erasure left pending (202: a base did not answer) is asked again, since the mesh and its erasure
 * stream are gone after the run. Audit rows stay (insert-only).
 */
const ERASE_SECONDS = 120 + opts.seconds;
async function eraseCpfs(base: string, adminKey: string, cpfs: string[]): Promise<{ erased: number; pendingFirst: number; left: number; failed: string[] }> {
	const out = { erased: 0, pendingFirst: 0, left: 0, failed: [] as string[] };
	const until = Date.now() + ERASE_SECONDS * 1000;
	const erase = (cpf: string) => fetch(`${base}/api/v1/privacy/${cpf}`, { method: "DELETE", headers: { authorization: `Bearer ${adminKey}` }, signal: AbortSignal.timeout(30_000) })
		.then(async r => ({ status: r.status, text: await r.text() }), (err: Error) => ({ status: 0, text: err.message }));
	const queue = cpfs.map(cpf => ({ cpf, tries: 0 }));
	await Promise.all(Array.from({ length: 16 }, async () => {
		while (queue.length && Date.now() < until) {
			const item = queue.shift()!;
			if (item.tries > 0) await sleep(2000);
			const res = await erase(item.cpf);
			if (res.status === 200) out.erased++;
			else if (res.status === 202 && ++item.tries < 5) {
				if (item.tries === 1) out.pendingFirst++;
				queue.push(item);
			} else if (out.failed.length < 5) out.failed.push(`${item.cpf}: ${res.status} ${res.text.slice(0, 200)}`);
		}
	}));
	out.left = cpfs.length - out.erased;
	return out;
}

/** Number of series in GET /metrics (a label per CPF or per request would show as growth). */
async function metricSeries(base: string): Promise<number | null> {
	const res = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(10_000) }).catch(() => null);
	if (!res || res.status !== 200) return null;
	return (await res.text()).split("\n").filter(l => l && !l.startsWith("#")).length;
}

// ------------------------------------------------------------------ the run

async function main(): Promise<void> {
	const machine = machineInfo();
	console.log(`soak: ${opts.seconds} s, ${opts.clients} clients; machine: ${machine.cpus} × ${machine.cpuModel}, ${machine.memGiB} GiB, node ${machine.node}`);
	const code = gitState(ROOT);
	const { env, cfg } = prepare(ROOT);
	if (!cfg.adminApiKey) throw new Error("no ADMIN_API_KEY in engines.sh env dev");
	const adminKey = cfg.adminApiKey;
	const mesh = await launchMesh(state, ROOT, env, cfg, { shape: "stack", waitFor: ALL_SERVICES });
	const procs = mesh.procs.map((p: MeshProc) => ({ pid: p.pid, name: Object.keys(GROUPS).find(g => GROUPS[g].join(",") === p.name) ?? p.name }));
	const consumer = await createConsumer(state, mesh.base, adminKey, `soak ${mesh.namespace}`, WORKLOAD_SCOPES);

	const engines: EnginePids = enginePids(env.CREDIT_MESH_DATA);
	const watched = [...procs, ...Object.entries(engines).filter(([, pid]) => pid).map(([name, pid]) => ({ name, pid: pid! }))];
	const memory = sampler(watched, opts.sampleSeconds * 1000);
	const heap = cfg.transporter ? await heapSampler({ ...cfg, transporter: cfg.transporter }, mesh.namespace, procs, memory.t0, opts.sampleSeconds * 1000) : null;
	const seriesBefore = await metricSeries(mesh.base);
	const meter = cpuMeter(procs, engines);
	console.log(`\nrunning the mix: ${opts.clients} clients for ${opts.seconds} s against ${mesh.base} (${procs.length} mesh processes)…`);
	let result: WorkloadResult;
	let cpu: CpuReport;
	try {
		result = await runWorkload({ bases: [mesh.base], key: consumer.key, clients: opts.clients, durationMs: opts.seconds * 1000, seed: opts.seed });
	} finally {
		cpu = meter();
	}
	const loadEndMs = Date.now() - memory.t0;
	const seriesAfter = await metricSeries(mesh.base);
	// A few seconds idle after the load, so an end sample shows what is kept once the load stops.
	await sleep(Math.min(10, opts.sampleSeconds * 2) * 1000);
	const series = memory.stop();
	const heapSeries = (await heap?.stop()) ?? new Map<string, HeapSample[]>();

	// ---------------------------------------------------------------- report
	const rows = [["route", "req/s", "p50 ms", "p99 ms", "requests", "errors", "retried", "statuses"]];
	for (const r of result.routes) {
		rows.push([r.route, fmt(r.perSecond, 1), fmt(r.p50Ms), fmt(r.p99Ms), String(r.requests), String(r.errors), String(r.retried), Object.entries(r.statuses).map(([s, n]) => `${s}:${n}`).join(" ")]);
	}
	const total = result.routes.reduce((a, r) => ({ requests: a.requests + r.requests, errors: a.errors + r.errors, retried: a.retried + r.retried }), { requests: 0, errors: 0, retried: 0 });
	rows.push(["all", fmt(total.requests / (result.elapsedMs / 1000), 1), "", "", String(total.requests), String(total.errors), String(total.retried), ""]);
	console.log(`\nseed ${result.seed}, ${(result.elapsedMs / 1000).toFixed(1)} s\n`);
	console.log(table(rows));
	const ack = result.acknowledged;
	console.log(`\nacknowledged writes: ${ack.persons.length} persons, ${ack.debts.length} debts, ${ack.profiles.length} profiles, ${ack.movements.length} movements`);
	if (result.unexpected.length) {
		console.log(`unexpected answers (first ${Math.min(10, result.unexpected.length)} of ${result.unexpected.length} kept):`);
		for (const u of result.unexpected.slice(0, 10)) console.log(`  ${u.route} → ${u.status} ${u.body}`);
	}
	console.log(`cpu: ${cpuText(cpu)}`);

	const memRows = [["process", "pid", "RSS start MiB", "RSS end of load MiB", "RSS idle MiB", "peak MiB", "RSS 2nd-half slope MiB/min", "heap floor by quarter MiB", "heap total start→end", "external start→end", ""]];
	const memory_ = series.map(s => {
		const start = s.samples[0]?.rssMiB ?? NaN;
		const end = s.samples.at(-1)?.rssMiB ?? NaN;
		const endOfLoad = s.samples.filter(p => p.tMs <= loadEndMs).at(-1)?.rssMiB ?? NaN;
		const slope = slopeSecondHalf(s, loadEndMs);
		const half = secondHalf(s, loadEndMs);
		const climb = half.length ? half.at(-1)!.rssMiB - half[0].rssMiB : 0;
		const heapSamples = heapSeries.get(s.name) ?? [];
		const floors = heapSamples.length ? heapFloors(heapSamples, loadEndMs) : [];
		const floorRising = floors.length === 0 || !floors.every(Number.isFinite) || floors[3] - floors[1] > 5;
		const judged = loadEndMs >= MIN_JUDGE_SECONDS * 1000;
		const growing = judged && slope > LEAK_SLOPE && climb > Math.max(5, 0.05 * start) && floorRising;
		memRows.push([s.name, String(s.pid), fmt(start, 1), fmt(endOfLoad, 1), fmt(end, 1), fmt(s.hwmMiB ?? NaN, 1), fmt(slope, 2), floors.map(f => fmt(f, 0)).join(" ") || "-",
			heapSamples.length ? `${fmt(heapSamples[0].heapTotalMiB, 0)}→${fmt(heapSamples.at(-1)!.heapTotalMiB, 0)}` : "-",
			heapSamples.length ? `${fmt(heapSamples[0].externalMiB, 0)}→${fmt(heapSamples.at(-1)!.externalMiB, 0)}` : "-", growing ? "GROWING" : judged ? "" : "not judged"]);
		return { name: s.name, pid: s.pid, rssStartMiB: start, rssEndOfLoadMiB: endOfLoad, rssIdleMiB: end, hwmMiB: s.hwmMiB, slopeSecondHalfMiBPerMin: slope, heapFloorsMiB: floors, growing, samples: s.samples, heapSamples };
	});
	console.log(`\nmemory (RSS every ${opts.sampleSeconds} s; slope = least squares over the second half of the load; "idle" ${Math.min(10, opts.sampleSeconds * 2)} s after it; engines by their main pid):\n`);
	console.log(table(memRows));
	if (loadEndMs < MIN_JUDGE_SECONDS * 1000) console.log(`(leaks are not judged on less than ${MIN_JUDGE_SECONDS} s of load: the processes are still warming up; run --seconds ${MIN_JUDGE_SECONDS} or more)`);
	console.log(`GET /metrics series: ${seriesBefore ?? "?"} before the load, ${seriesAfter ?? "?"} after`);
	const warnings = meshWarnings(mesh.logFile);
	console.log(`\nmesh log: ${warnings.length} lines at warn or above${warnings.length ? ` (${mesh.logFile}); first ones:` : ""}`);
	for (const w of warnings.slice(0, 8)) console.log(`  ${w.slice(0, 400)}`);
	if ((cpu.foreign ?? 0) > 50) console.log(`note: other work used ${cpu.foreign}% of a core during the run: figures are low and noisy.`);
	console.log(gitText(code));

	let erased: Awaited<ReturnType<typeof eraseCpfs>> | null = null;
	if (!opts.keepData) {
		const cpfs = [...new Set([...ack.persons, ...ack.profiles, ...ack.movements.map(m => m.cpf)])];
		console.log(`\nerasing the run's ${cpfs.length} CPFs (DELETE /api/v1/privacy/:cpf; their audit rows stay)…`);
		const eraseStart = Date.now();
		erased = await eraseCpfs(mesh.base, adminKey, cpfs);
		console.log(`  in ${((Date.now() - eraseStart) / 1000).toFixed(1)} s: erased ${erased.erased} (${erased.pendingFirst} answered 202 pending at first and were asked again), not erased ${erased.left}${erased.failed.length ? `; failures: ${erased.failed.join("; ")}` : ""}`);
	}

	const out = await writeResults(ROOT, "soak", {
		at: new Date().toISOString(), machine, code, params: { ...opts, seed: result.seed, groups: GROUPS },
		elapsedMs: result.elapsedMs, routes: result.routes, total,
		acknowledged: { persons: ack.persons.length, debts: ack.debts.length, profiles: ack.profiles.length, movements: ack.movements.length },
		unexpected: result.unexpected, cpu, memory: memory_, loadEndMs, metricSeries: { before: seriesBefore, after: seriesAfter }, meshWarnings: warnings.length, firstMeshWarnings: warnings.slice(0, 20), erased
	});
	console.log(`results: ${out}`);
	if (total.errors > 0 || memory_.some(m => m.growing)) process.exitCode = 1;
}

runMain(state, {
	budgetMs: 420_000 + ERASE_SECONDS * 1000 + opts.seconds * 1000,
	main: async () => {
		await main();
		if (process.exitCode) throw new Error("errors or growing memory (see above)");
	},
	cleanup
});
