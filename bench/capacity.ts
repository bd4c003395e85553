// `npm run bench:capacity -- [--file bench/results/soak.json] [--utilisation 0.6]`: the capacity table of
// docs/deploy.md from a soak run's measured CPU (bench/soak.ts: each service group's process and each
// engine, user+system time from /proc over the run). CPU per request of a group = its CPU seconds over the
// run / the requests of the run (the soak's mix: bench/workload.ts DEFAULT_MIX). For 1 000, 10 000 and
// 100 000 req/s of that mix: the cores each group needs, and its replicas at the CPU limit docker-stack.yml
// gives one replica, kept at `utilisation` of it (headroom for a lost machine's share and for bursts),
// never fewer than the stack's 2. Engines get cores only: they do not scale by replicas (docs/deploy.md).
import { readFileSync } from "node:fs";
import path from "node:path";
import { load } from "js-yaml";
import { parseFlags } from "../scripts/args";

const ROOT = path.resolve(__dirname, "..");
const opts = parseFlags(process.argv.slice(2), {
	file: { type: "string", default: "bench/results/soak.json" },
	utilisation: { type: "number", default: 0.6 }
});
const RATES = [1_000, 10_000, 100_000];
const MIN_REPLICAS = 2;

interface Soak {
	at: string;
	machine: { cpus: number; cpuModel: string };
	elapsedMs: number;
	total: { requests: number };
	cpu: { meshProcesses: Record<string, number>; postgres: number | null; ferretdb: number | null; nats: number | null; elasticsearch: number | null; foreign: number | null; machineBusy: number | null };
}

const soak = JSON.parse(readFileSync(path.resolve(ROOT, opts.file as string), "utf8")) as Soak;
const stack = load(readFileSync(path.join(ROOT, "docker-stack.yml"), "utf8")) as { services: Record<string, { deploy?: { resources?: { limits?: { cpus?: string } } } }> };
const seconds = soak.elapsedMs / 1000;
const reqPerSec = soak.total.requests / seconds;
/** Core-milliseconds per request from a share of one core in % over the run. */
const perRequest = (pct: number) => (pct / 100) * 1000 / reqPerSec;

const rows: string[][] = [];
for (const [group, pct] of Object.entries(soak.cpu.meshProcesses)) {
	const limit = Number(stack.services[group]?.deploy?.resources?.limits?.cpus ?? 1);
	const ms = perRequest(pct);
	rows.push([group, ms.toFixed(2), `${limit}`, ...RATES.map(r => {
		const cores = (r * ms) / 1000;
		return `${cores.toFixed(1)} cores, ${Math.max(MIN_REPLICAS, Math.ceil(cores / (limit * (opts.utilisation as number))))} replicas`;
	})]);
}
for (const engine of ["postgres", "ferretdb", "nats", "elasticsearch"] as const) {
	const pct = soak.cpu[engine];
	if (pct === null || pct === undefined) continue;
	const ms = perRequest(pct);
	rows.push([`${engine} (engine)`, ms.toFixed(2), "-", ...RATES.map(r => `${((r * ms) / 1000).toFixed(1)} cores`)]);
}

console.log(`From ${opts.file}: ${soak.at}, ${soak.total.requests} requests in ${seconds.toFixed(0)} s (${reqPerSec.toFixed(1)} req/s) on ${soak.machine.cpus} × ${soak.machine.cpuModel}; ` +
	`machine busy ${soak.cpu.machineBusy ?? "?"} %, other work on it ${soak.cpu.foreign ?? "?"} % of a core; replicas at ${(opts.utilisation as number) * 100} % of their CPU limit.\n`);
const header = ["group", "CPU ms / request", "CPU limit / replica", ...RATES.map(r => `${r.toLocaleString("en")} req/s`)];
console.log(`| ${header.join(" | ")} |\n|${header.map(() => "---").join("|")}|`);
for (const row of rows) console.log(`| ${row.join(" | ")} |`);
