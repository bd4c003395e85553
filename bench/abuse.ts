// `npm run bench:abuse`: hostile traffic against the mesh split by service group as docker-stack.yml
// deploys it (every group its own process, calls between groups over NATS), while a stream of valid
// lookups runs beside it. Three attacks, one after the other:
//   1. 50 concurrent unauthenticated 8 MB bodies on POST /transactions;
//   2. 5 MB of junk NDJSON (`x` lines) with a valid key, a few at once;
//   3. 10 000 unknown bearer tokens in a burst.
// For each: the gateway's and base-c's peak heap growth, their longest event-loop delay (the
// `process.eventloop.delay.max` metric, read over `$node.metrics`), and the p99 of the valid lookups
// against their p99 with no attack. Targets (issue 13): heap growth < 64 MiB, no delay > 100 ms,
// lookups' p99 < 3× idle. Not a ratio benchmark: an attack has no raw-engine side.
// Options: --lookup-concurrency N (4), --idle-seconds S (8).
import path from "node:path";
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { SERVICE_GROUPS } from "../config/groups";
import { EVENT_LOOP_DELAY_MAX } from "../middlewares/event-loop.middleware";
import { parseFlags } from "../scripts/args";
import { randomCpf } from "../lib/cpf";
import { prepare } from "./lib/engines";
import { call, createConsumer, expect } from "./lib/http";
import { closedLoop } from "./lib/load";
import { runMain, stopEverything } from "./lib/lifecycle";
import { launchMesh, meshWarnings, observerBroker } from "./lib/mesh";
import { fmt, gitState, gitText, machineInfo, table, writeResults } from "./lib/report";
import type { BenchState } from "./lib/state";
import { inParallel } from "./lib/data";
import { percentiles } from "./lib/stats";

const ROOT = path.resolve(__dirname, "..");
const opts = parseFlags(process.argv.slice(2), {
	lookupConcurrency: { type: "number", default: 4 },
	idleSeconds: { type: "number", default: 8 }
});
const ALL_SERVICES = Object.values(SERVICE_GROUPS).flat();
const WATCHED = ["api", "base-c"] as const;
const TARGET = { heapMiB: 64, delayMs: 100, p99Ratio: 3 };

const state: BenchState = { children: [] };
let cleaning: Promise<void> | undefined;
const cleanup = () => (cleaning ??= stopEverything(state));

/** A request that may fail without failing the run: its status, or 0 when the connection broke. */
async function attempt(url: string, init: RequestInit): Promise<number> {
	try {
		const res = await fetch(url, { ...init, signal: AbortSignal.timeout(60_000) });
		await res.arrayBuffer();
		return res.status;
	} catch {
		return 0;
	}
}

const countBy = (xs: number[]) => Object.entries(xs.reduce<Record<number, number>>((a, s) => ((a[s] = (a[s] ?? 0) + 1), a), {})).map(([s, n]) => `${s}:${n}`).join(" ");

async function main(): Promise<void> {
	const machine = machineInfo();
	console.log(`abuse: machine ${machine.cpus} × ${machine.cpuModel}, ${machine.memGiB} GiB, node ${machine.node}`);
	const code = gitState(ROOT);
	const { env, cfg } = prepare(ROOT);
	if (!cfg.adminApiKey || !cfg.transporter) throw new Error("engines.sh env dev gives no ADMIN_API_KEY or TRANSPORTER");
	const groups = Object.entries(SERVICE_GROUPS);
	const mesh = await launchMesh(state, ROOT, env, cfg, { shape: "stack", waitFor: ALL_SERVICES });
	const groupOfPid = new Map(mesh.procs.map(p => [p.pid, groups.find(([, s]) => s.join(",") === p.name)?.[0] ?? p.name]));
	const consumer = await createConsumer(state, mesh.base, cfg.adminApiKey, `abuse ${mesh.namespace}`, ["persons:read", "persons:write", "transactions:write"]);

	const cpfs = Array.from({ length: 200 }, () => randomCpf());
	let seeded = 0;
	await inParallel(cpfs.length, 16, "persons", async () => {
		const cpf = cpfs[seeded++];
		expect(await call(mesh.base, "POST", "/api/v1/persons", consumer.key, { cpf, nome: "Alvo Legitimo", endereco: "Rua A, 1" }), 201, "POST /persons");
	});

	// The watched nodes, found by their pid, read every 200 ms: heap in use and the loop's longest delay.
	const observer = observerBroker(mesh.namespace, "abuse-observer", cfg);
	state.observer = observer;
	await observer.start();
	await observer.waitForServices(ALL_SERVICES, 20_000, 200);
	const nodes = new Map<string, string>();
	for (const n of observer.registry.nodes.list({ onlyAvailable: true, withServices: false }) as { id: string; local: boolean }[]) {
		if (n.local) continue;
		const h: any = await observer.call("$node.health", {}, { nodeID: n.id });
		const group = groupOfPid.get(h.process.pid);
		if (group) nodes.set(group, n.id);
	}
	const sample = async () => Object.fromEntries(await Promise.all(WATCHED.map(async g => {
		const nodeID = nodes.get(g)!;
		const [h, m]: any[] = await Promise.all([
			observer.call("$node.health", {}, { nodeID, timeout: 5000 }),
			observer.call("$node.metrics", { includes: [EVENT_LOOP_DELAY_MAX] }, { nodeID, timeout: 5000 })
		]);
		return [g, { heapMiB: h.process.memory.heapUsed / 2 ** 20, delayMs: Number(m[0]?.values?.[0]?.value ?? 0) }] as const;
	})));
	const lookup = (i: number) => fetch(`${mesh.base}/api/v1/persons/${cpfs[i % cpfs.length]}`, { headers: { authorization: `Bearer ${consumer.key}`, finalidade: "concessao_credito" }, signal: AbortSignal.timeout(30_000) })
		.then(async r => { await r.arrayBuffer(); if (r.status !== 200) throw new Error(`lookup ${r.status}`); });

	console.log(`\nidle: valid lookups, ${opts.lookupConcurrency} at once, ${opts.idleSeconds} s…`);
	const idleLatencies: number[] = [];
	await closedLoop(opts.lookupConcurrency, opts.idleSeconds, lookup, idleLatencies);
	const idle = percentiles(idleLatencies);

	const eightMb = Buffer.from(`[${"{},".repeat(Math.floor((8 * 2 ** 20 - 3) / 3))}{}]`);
	const junk = Buffer.from("x\n".repeat((5 * 2 ** 20) / 2));
	const attacks: { name: string; run: () => Promise<number[]> }[] = [
		{ name: "50 unauthenticated 8 MB bodies", run: () => Promise.all(Array.from({ length: 50 }, () =>
			attempt(`${mesh.base}/api/v1/transactions`, { method: "POST", headers: { "content-type": "application/json" }, body: eightMb }))) },
		{ name: "5 MB junk NDJSON with a valid key (×6, 3 at once)", run: async () => (await Promise.all([0, 1, 2].map(async () => {
			const out: number[] = [];
			for (let i = 0; i < 2; i++) out.push(await attempt(`${mesh.base}/api/v1/transactions`, { method: "POST", headers: { authorization: `Bearer ${consumer.key}`, "content-type": "application/x-ndjson" }, body: junk }));
			return out;
		}))).flat() },
		{ name: "10 000 unknown bearer tokens", run: async () => {
			const statuses: number[] = [];
			let next = 0;
			await Promise.all(Array.from({ length: 200 }, async () => {
				while (next < 10_000) {
					next++;
					statuses.push(await attempt(`${mesh.base}/api/v1/persons/${cpfs[next % cpfs.length]}`, { headers: { authorization: `Bearer cm_${randomBytes(24).toString("base64url")}` } }));
				}
			}));
			return statuses;
		} }
	];

	const results = [];
	for (const attack of attacks) {
		await sleep(2000);
		const before = await sample();
		const peaks = Object.fromEntries(WATCHED.map(g => [g, { heapMiB: before[g].heapMiB, delayMs: 0 }]));
		let watching = true;
		const watcher = (async () => {
			while (watching) {
				const s = await sample().catch(() => null);
				for (const g of WATCHED) if (s) peaks[g] = { heapMiB: Math.max(peaks[g].heapMiB, s[g].heapMiB), delayMs: Math.max(peaks[g].delayMs, s[g].delayMs) };
				await sleep(200);
			}
		})();
		const latencies: number[] = [];
		let attacking = true;
		const t0 = Date.now();
		const lookups = (async () => {
			// Valid lookups all through the attack (and a second after it, when its backlog drains).
			while (attacking) await closedLoop(opts.lookupConcurrency, 1, lookup, latencies);
			await closedLoop(opts.lookupConcurrency, 1, lookup, latencies);
		})();
		const statuses = await attack.run();
		const seconds = (Date.now() - t0) / 1000;
		attacking = false;
		await lookups;
		await sleep(1200); // one more metrics window, so a stall at the very end is seen
		watching = false;
		await watcher;
		const p = percentiles(latencies);
		const growth = Object.fromEntries(WATCHED.map(g => [g, peaks[g].heapMiB - before[g].heapMiB]));
		const row = { attack: attack.name, seconds, statuses: countBy(statuses), heapGrowthMiB: growth, maxDelayMs: Object.fromEntries(WATCHED.map(g => [g, peaks[g].delayMs])), lookups: { count: latencies.length, ...p, p99Ratio: p.p99 / idle.p99 } };
		const met = WATCHED.every(g => growth[g] < TARGET.heapMiB && peaks[g].delayMs <= TARGET.delayMs) && row.lookups.p99Ratio < TARGET.p99Ratio;
		results.push({ ...row, met });
		console.log(`${attack.name}: ${fmt(seconds, 1)} s, answers ${row.statuses}`);
	}

	console.log(`\nvalid lookups with no attack: p50 ${fmt(idle.p50)} ms, p99 ${fmt(idle.p99)} ms (${idleLatencies.length} requests)\n`);
	console.log(table([
		["attack", "answers", "heap growth MiB api / base-c", "longest loop delay ms api / base-c", "lookups p99 ms", "p99 / idle", `targets (<${TARGET.heapMiB} MiB, ≤${TARGET.delayMs} ms, <${TARGET.p99Ratio}×)`],
		...results.map(r => [r.attack, r.statuses, `${fmt(r.heapGrowthMiB.api, 1)} / ${fmt(r.heapGrowthMiB["base-c"], 1)}`, `${fmt(r.maxDelayMs.api, 0)} / ${fmt(r.maxDelayMs["base-c"], 0)}`,
			fmt(r.lookups.p99), fmt(r.lookups.p99Ratio, 2), r.met ? "met" : "NOT met"])
	]));
	const warnings = meshWarnings(mesh.logFile);
	console.log(`\nmesh log: ${warnings.length} lines at warn or above${warnings.length ? ` (${mesh.logFile})` : ""}`);
	console.log(gitText(code));
	console.log(`results: ${await writeResults(ROOT, "abuse", { at: new Date().toISOString(), machine, code, params: opts, idle, results, meshWarnings: warnings.length })}`);
}

runMain(state, { budgetMs: 600_000, main, cleanup });
