// The report of a run: what was measured on what (commit, machine), the tables and lines printed after
// each side and at the end, the warnings about a noisy machine, and the JSON results.
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { CpuReport } from "./cpu";
import type { WaitProfile } from "./db-waits";
import { writeChart } from "./charts";
import { type NatsTraffic, trafficText } from "./nats-traffic";

/**
 * The commit the measured code was built from, and the files outside bench/ that differed from it
 * (the build compiles the working tree, so uncommitted changes are part of what was measured).
 */
export interface Observation<T> {
	result: T;
	cpu: CpuReport;
	db: Record<string, WaitProfile>;
	/** CPU in the 2 s before the measurement, with none of our load running. */
	idleBefore: CpuReport;
	/** Engines whose pid changed during the measurement: someone stopped or restarted them. */
	enginesRestarted: string[];
	/** Messages and bytes through the NATS server during the measurement (null: its monitoring port did not answer). */
	nats?: NatsTraffic | null;
}

export interface SideResult {
	reqPerSec: number;
	p50: number;
	p99: number;
	mean: number;
	ok: number;
	errors: number;
	seconds: number;
	cpu: CpuReport;
	/** Where each database's client sessions were, on average, during the measurement. */
	db: Record<string, WaitProfile>;
	/** CPU in the 2 s before the measurement, with none of our load running (see observe). */
	idleBefore: CpuReport;
	/** Engines whose pid changed during the measurement (see observe). */
	enginesRestarted: string[];
	/** Messages and bytes through the NATS server during the measurement. */
	nats?: NatsTraffic | null;
	detail: Record<string, unknown>;
}

export function gitState(root: string): { head: string | null; changedOutsideBench: string[] } {
	const git = (args: string[]) => spawnSync("git", args, { cwd: root, encoding: "utf8", timeout: 10_000 });
	const head = git(["rev-parse", "--short", "HEAD"]);
	const status = git(["status", "--porcelain", "--untracked-files=all"]);
	const changed = status.status === 0 ? status.stdout.split("\n").filter(Boolean).map(l => l.slice(3)).filter(f => !f.startsWith("bench/")) : [];
	return { head: head.status === 0 ? head.stdout.trim() : null, changedOutsideBench: changed };
}

/** One line saying what was measured, warning when it was not exactly a commit. */
export function gitText(g: ReturnType<typeof gitState>): string {
	return g.changedOutsideBench.length === 0
		? `code: commit ${g.head ?? "unknown"}, no uncommitted changes outside bench/`
		: `code: commit ${g.head ?? "unknown"} plus ${g.changedOutsideBench.length} uncommitted file(s) outside bench/ (built and measured as they were): ${g.changedOutsideBench.slice(0, 12).join(", ")}${g.changedOutsideBench.length > 12 ? ", …" : ""}`;
}

export function machineInfo() {
	const list = os.cpus();
	return { cpus: list.length, cpuModel: list[0]?.model ?? "unknown", memGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, platform: `${os.platform()} ${os.release()}` };
}

/** Both sides' table, their ratio and the notes; returns the ratio (ours / raw). */
export function printComparison(o: { setup: string; gatewayLabel: string; rawLabel: string; gateway: SideResult; raw: SideResult; notes: (string | false)[]; warnings: string[] }) {
	const { gateway, raw } = o;
	const ratio = sideRatio(gateway, raw);
	console.log(`\n${o.setup}\n`);
	console.log(comparisonTable("path", [[o.gatewayLabel, gateway], [o.rawLabel, raw]]));
	console.log(`\n${ratioText(ratio)}`);
	o.notes.filter((n): n is string => !!n).forEach((note, i) => console.log(`${i === 0 ? "\n" : ""}note: ${note}`));
	const noise = noiseWarning([["gateway", gateway], ["raw", raw]]);
	if (noise) console.log(noise);
	printMeshWarnings(o.warnings);
	return ratio;
}

/** Request rate, median and 99th-percentile latency and errors of each side, one row each. */
export function comparisonTable(heading: string, sides: [label: string, side: SideResult][]): string {
	const row = ([label, s]: [string, SideResult]) => [label, fmt(s.reqPerSec, 0), fmt(s.p50), fmt(s.p99), String(s.errors)];
	return table([[heading, "req/s", "p50 ms", "p99 ms", "errors"], ...sides.map(row)]);
}

/** Ours over raw: request rate and latencies. */
export function sideRatio(ours: SideResult, raw: SideResult): { reqPerSec: number; p50: number; p99: number } {
	return { reqPerSec: ours.reqPerSec / raw.reqPerSec, p50: ours.p50 / raw.p50, p99: ours.p99 / raw.p99 };
}

export function ratioText(r: ReturnType<typeof sideRatio>): string {
	return `ratio ours/raw: req/s ${fmt(r.reqPerSec, 3)} (${fmt(r.reqPerSec * 100, 1)} %), p50 latency ${fmt(r.p50)}×, p99 latency ${fmt(r.p99)}×`;
}

/** How many lines at warn or above the mesh logged, and the first, when there are any. */
export function printMeshWarnings(warnings: string[]): void {
	if (warnings.length) console.log(`\nthe mesh logged ${warnings.length} warning/error line(s); first: ${warnings[0].slice(0, 300)}`);
}

export function fmt(n: number, digits = 2): string {
	return Number.isFinite(n) ? n.toFixed(digits) : "n/a";
}

export function table(rows: string[][]): string {
	const widths = rows[0].map((_, c) => Math.max(...rows.map(r => r[c].length)));
	const line = (r: string[]) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join(" | ");
	return [line(rows[0]), widths.map(w => "-".repeat(w)).join("-|-"), ...rows.slice(1).map(line)].join("\n");
}

export function cpuText(c: CpuReport): string {
	const others = Object.entries(c.others).map(([name, pct]) => `${name} ${pct}%`).join(", ");
	const perProcess = Object.entries(c.meshProcesses).filter(([, pct]) => pct > 0).map(([name, pct]) => `${name} ${pct}%`).join(", ");
	return `mesh ${c.mesh ?? "-"}%${perProcess ? ` (${perProcess})` : ""}, this process ${c.loadGenerator ?? "-"}%, postgres ${c.postgres ?? "-"}%, ferretdb ${c.ferretdb ?? "-"}%, nats ${c.nats ?? "-"}%, elasticsearch ${c.elasticsearch ?? "-"}%` +
		(others ? `, others: ${others}` : "") +
		`; everything else (other processes, kernel threads) ${c.foreign ?? "-"}% (100% = one core); machine busy ${c.machineBusy ?? "-"}% of ${os.cpus().length} cores (softirq ${c.softirq ?? "-"}%, steal ${c.steal ?? "-"}%)`;
}

function dbText(db: Record<string, WaitProfile>): string {
	const one = (w: WaitProfile) => Object.entries(w.sessions).filter(([, n]) => n >= 0.1).map(([what, n]) => `${what} ${n}`).join(", ") || "none";
	const entries = Object.entries(db);
	if (entries.length === 1) return one(entries[0][1]);
	return entries.map(([name, w]) => `${name}: ${one(w)}`).join("; ") || "not sampled";
}

/** CPU of the engines and of anything else while none of our load ran, when it is more than noise (10 % of a core). */
function busyBefore(c: CpuReport): string | null {
	const parts = ([["postgres", c.postgres], ["ferretdb", c.ferretdb], ["nats", c.nats], ["elasticsearch", c.elasticsearch], ["other work", c.foreign]] as const)
		.filter(([, v]) => (v ?? 0) > 10).map(([name, v]) => `${name} ${v}%`);
	return parts.length ? parts.join(", ") : null;
}

/** The CPU and database-session lines printed after each side. */
export function printObservation(s: Omit<Observation<unknown>, "result">): void {
	console.log(`  cpu: ${cpuText(s.cpu)}`);
	if (s.enginesRestarted.length) console.log(`  ${s.enginesRestarted.join(", ")} stopped or restarted during the run (pid changed)`);
	const busy = s.idleBefore && busyBefore(s.idleBefore);
	if (busy) console.log(`  busy before the run, with none of our load: ${busy} (100% = one core)`);
	if (Object.keys(s.db).length > 0) console.log(`  db sessions (average): ${dbText(s.db)}`);
	if (s.nats) console.log(`  nats ${trafficText(s.nats, "ok" in s && typeof s.ok === "number" ? s.ok : undefined)}`);
}

/**
 * The warning printed when other work used the machine during a measurement (more than half a core
 * beyond ours), or when our engines were busy for someone else just before it.
 */
export function noiseWarning(sides: [string, Omit<Observation<unknown>, "result" | "db">][]): string | null {
	const during = sides.filter(([, s]) => (s.cpu.foreign ?? 0) > 50).map(([name, s]) => `${name} run ${s.cpu.foreign}%`);
	const before = sides.map(([name, s]) => [name, s.idleBefore && busyBefore(s.idleBefore)] as const).filter(([, text]) => text).map(([name, text]) => `before the ${name} run: ${text}`);
	const lines: string[] = [];
	if (during.length) lines.push(`WARNING: something else used CPU during the measurement (${during.join(", ")} of a core beyond the mesh, the engines and this process): the figures understate both sides and the ratio is unreliable; rerun on a quiet machine.`);
	const restarted = sides.filter(([, s]) => s.enginesRestarted.length).map(([name, s]) => `${s.enginesRestarted.join(", ")} during the ${name} run`);
	if (restarted.length) lines.push(`WARNING: an engine was stopped or restarted by someone else (${restarted.join("; ")}): errors and figures of that run are not the benchmark's; rerun.`);
	if (before.length) lines.push(`WARNING: with none of our load running, the engines or the machine were busy (${before.join("; ")}; 100% = one core): someone else was using them, and the CPU figures above include that work; rerun on a quiet machine.`);
	return lines.length ? lines.join("\n") : null;
}

/** Writes bench/results/<name>.json and, for the benchmarks that have one, its chart (bench/lib/charts.ts). */
export async function writeResults(root: string, name: string, data: Record<string, unknown>): Promise<string> {
	const dir = path.join(root, "bench", "results");
	mkdirSync(dir, { recursive: true });
	const out = path.join(dir, `${name}.json`);
	writeFileSync(out, JSON.stringify(data, null, 2) + "\n");
	const chart = await writeChart(root, name, data);
	return path.relative(root, out) + (chart ? `, chart ${chart}` : "");
}
