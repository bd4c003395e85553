// Small helpers for the benchmarks: arguments, child processes, percentiles, CPU accounting.
import { spawn, spawnSync, type ChildProcess, type SpawnSyncOptions } from "node:child_process";
import { closeSync, openSync, readdirSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { cpus } from "node:os";
import pg from "pg";

/** `--name value` or `--name=value` as a number, else the default; refuses junk. */
export function numberArg(argv: string[], name: string, fallback: number, min = 1): number {
	const raw = stringArg(argv, name);
	if (raw === undefined) return fallback;
	const value = Number(raw);
	if (!Number.isFinite(value) || value < min) throw new Error(`--${name} must be a number >= ${min} (got '${raw}')`);
	return value;
}

export function stringArg(argv: string[], name: string): string | undefined {
	for (let i = 0; i < argv.length; i++) {
		if (argv[i] === `--${name}`) return argv[i + 1];
		if (argv[i].startsWith(`--${name}=`)) return argv[i].slice(name.length + 3);
	}
	return undefined;
}

export function flagArg(argv: string[], name: string): boolean {
	return argv.includes(`--${name}`);
}

/** Runs a command to completion (output shown), throwing when it fails or overruns. */
export function run(cmd: string, args: string[], opts: SpawnSyncOptions & { timeoutMs: number }): void {
	const r = spawnSync(cmd, args, { stdio: ["ignore", "inherit", "inherit"], ...opts, timeout: opts.timeoutMs });
	if (r.error) throw new Error(`${cmd} ${args.join(" ")}: ${r.error.message}`);
	if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} exited with ${r.status ?? r.signal}`);
}

/**
 * The variables `bash scripts/engines.sh env <profile>` exports, evaluated by bash itself (so any
 * quoting it uses is honoured) and returned as a plain object.
 */
export function enginesEnv(root: string, profile: string): Record<string, string> {
	const script = `eval "$(bash scripts/engines.sh env ${profile})" && bash scripts/engines.sh env ${profile} | sed -n 's/^export \\([A-Za-z_][A-Za-z0-9_]*\\)=.*/\\1/p' | while read -r n; do printf '%s=%s\\0' "$n" "\${!n}"; done`;
	const r = spawnSync("bash", ["-c", script], { cwd: root, encoding: "utf8", timeout: 30_000 });
	if (r.status !== 0) throw new Error(`engines.sh env ${profile} failed: ${r.stderr}`);
	const env: Record<string, string> = {};
	for (const entry of r.stdout.split("\0")) {
		const eq = entry.indexOf("=");
		if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
	}
	if (Object.keys(env).length === 0) throw new Error(`engines.sh env ${profile} exported nothing`);
	return env;
}

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const srv = createServer();
		srv.unref();
		srv.on("error", reject);
		srv.listen(0, "127.0.0.1", () => {
			const addr = srv.address();
			srv.close(() => (addr && typeof addr === "object" ? resolve(addr.port) : reject(new Error("no port"))));
		});
	});
}

/** A long-running child whose stdout and stderr go to a log file. */
export function spawnLogged(cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd: string, logFile: string): ChildProcess {
	const fd = openSync(logFile, "a");
	try {
		return spawn(cmd, args, { cwd, env, stdio: ["ignore", fd, fd] });
	} finally {
		closeSync(fd);
	}
}

export function alive(child: ChildProcess): boolean {
	return child.exitCode === null && child.signalCode === null;
}

/** SIGTERM, then SIGKILL if it is still there after graceMs. */
export async function stopChild(child: ChildProcess, graceMs = 8000): Promise<void> {
	if (!alive(child)) return;
	const exited = new Promise<void>(resolve => child.once("exit", () => resolve()));
	child.kill("SIGTERM");
	const timer = setTimeout(() => alive(child) && child.kill("SIGKILL"), graceMs);
	await exited;
	clearTimeout(timer);
}

export function tail(file: string, lines = 30): string {
	try {
		return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
	} catch {
		return "";
	}
}

export const sleep = (ms: number) => new Promise<void>(resolve => setTimeout(resolve, ms));

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
	if (sorted.length === 0) return NaN;
	const rank = Math.ceil((p / 100) * sorted.length);
	return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

export function sortedCopy(values: number[]): Float64Array {
	return Float64Array.from(values).sort();
}

// ---------------------------------------------------------------- CPU accounting (Linux /proc)

const CLK_TCK = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout?.trim()) || 100;

interface ProcSample { comm: string; ppid: number; cpu: number }

/** user+system CPU seconds of every process, by pid (empty where /proc is not there). */
function processes(): Map<number, ProcSample> {
	const out = new Map<number, ProcSample>();
	let entries: string[] = [];
	try {
		entries = readdirSync("/proc");
	} catch {
		return out;
	}
	for (const entry of entries) {
		if (!/^\d+$/.test(entry)) continue;
		try {
			const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
			const close = stat.lastIndexOf(")");
			// After the parenthesised name: state ppid …; utime and stime are fields 14 and 15 of the line.
			const fields = stat.slice(close + 2).split(" ");
			out.set(Number(entry), { comm: stat.slice(stat.indexOf("(") + 1, close), ppid: Number(fields[1]), cpu: (Number(fields[11]) + Number(fields[12])) / CLK_TCK });
		} catch {
			// gone meanwhile
		}
	}
	return out;
}

/** Whole-machine jiffies from /proc/stat: user nice system idle iowait irq softirq steal. */
function machineJiffies(): number[] | null {
	try {
		return readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1, 9).map(Number);
	} catch {
		return null;
	}
}

export interface CpuReport {
	/** CPU time as a share of one core over the interval: 150 = one and a half cores busy. */
	mesh: number | null;
	/** The same per mesh process, when there are several (--split). */
	meshProcesses: Record<string, number>;
	/** This process: autocannon, or the raw side's pg client work. */
	loadGenerator: number | null;
	postgres: number | null;
	nats: number | null;
	/** Other processes that used more than 5 % of a core meanwhile (noise from other work on the machine). */
	others: Record<string, number>;
	/**
	 * CPU used by anything else (other processes, including ones that came and went meanwhile),
	 * in % of one core: whatever the machine was busy with beyond the processes above and softirq.
	 */
	foreign: number | null;
	/** Share of the whole machine (all cores) that was busy, 0–100, and its kernel-side parts. */
	machineBusy: number | null;
	softirq: number | null;
	steal: number | null;
}

/**
 * Starts a CPU measurement; the returned function ends it. Processes started meanwhile count in
 * full; the mesh is its pids and their descendants.
 */
export function cpuMeter(meshProcs: { pid: number; name: string }[]): () => CpuReport {
	const t0 = process.hrtime.bigint();
	const before = processes();
	const self = process.cpuUsage();
	const m0 = machineJiffies();
	return () => {
		const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
		const selfUsed = process.cpuUsage(self);
		const m1 = machineJiffies();
		const after = processes();
		const mesh = new Set(meshProcs.map(m => m.pid));
		const meshProcesses: Record<string, number> = {};
		// Descendants of the mesh processes count as mesh (none today, but cheap to be right).
		for (let grew = true; grew;) {
			grew = false;
			for (const [pid, p] of after) {
				if (!mesh.has(pid) && mesh.has(p.ppid)) {
					mesh.add(pid);
					grew = true;
				}
			}
		}
		const used = { mesh: 0, postgres: 0, nats: 0 };
		const seen = { mesh: false, postgres: false, nats: false };
		const others: Record<string, number> = {};
		for (const [pid, p] of after) {
			if (pid === process.pid) continue;
			const delta = p.cpu - (before.get(pid)?.comm === p.comm ? before.get(pid)!.cpu : 0);
			const group = mesh.has(pid) ? "mesh" : p.comm === "postgres" ? "postgres" : p.comm === "nats-server" ? "nats" : null;
			if (group === "mesh") {
				const name = meshProcs.find(m => m.pid === pid)?.name;
				if (name && meshProcs.length > 1) meshProcesses[name] = (meshProcesses[name] ?? 0) + delta;
			}
			if (group) {
				used[group] += delta;
				seen[group] = true;
			} else if (delta > 0) others[p.comm] = (others[p.comm] ?? 0) + delta;
		}
		const pct = (v: number) => Math.round((v / seconds) * 100);
		const noisy = Object.fromEntries(Object.entries(others).map(([k, v]) => [k, pct(v)] as const).filter(([, v]) => v > 5).sort((a, b) => b[1] - a[1]));
		let machine: Pick<CpuReport, "machineBusy" | "softirq" | "steal" | "foreign"> = { machineBusy: null, softirq: null, steal: null, foreign: null };
		if (m0 && m1) {
			const d = m1.map((v, i) => v - (m0[i] ?? 0));
			const total = d.reduce((a, b) => a + b, 0);
			if (total > 0) {
				const share = (v: number) => Math.round((v / total) * 100);
				const cores = cpus().length;
				const ours = used.mesh + used.postgres + used.nats + (selfUsed.user + selfUsed.system) / 1e6;
				const busyCoreSeconds = ((total - d[3] - d[4] - (d[6] ?? 0)) / total) * cores * seconds;
				machine = {
					machineBusy: share(total - d[3] - d[4]), softirq: share(d[6] ?? 0), steal: share(d[7] ?? 0),
					foreign: Math.max(0, pct(busyCoreSeconds - ours))
				};
			}
		}
		return {
			mesh: seen.mesh ? pct(used.mesh) : null,
			meshProcesses: Object.fromEntries(Object.entries(meshProcesses).map(([k, v]) => [k, pct(v)] as const).sort((a, b) => b[1] - a[1])),
			loadGenerator: pct((selfUsed.user + selfUsed.system) / 1e6),
			postgres: seen.postgres ? pct(used.postgres) : null,
			nats: seen.nats ? pct(used.nats) : null,
			others: noisy,
			...machine
		};
	};
}

// ---------------------------------------------------------------- where the database sessions wait

export interface WaitProfile {
	samples: number;
	/** Average number of client sessions of the database in each state: "CPU" (active, not waiting), "Lock:advisory", "IO:WALSync", "idle"… */
	sessions: Record<string, number>;
}

/**
 * Samples pg_stat_activity every `everyMs` on a connection of its own (same role as the sessions
 * watched, so their wait events are visible); stop() returns the averages.
 */
export async function waitSampler(connectionString: string, everyMs = 100): Promise<() => Promise<WaitProfile>> {
	const client = new pg.Client({ connectionString, statement_timeout: 2000 });
	await client.connect();
	const totals: Record<string, number> = {};
	let samples = 0;
	let stopped = false;
	const loop = (async () => {
		while (!stopped) {
			const { rows } = await client.query(
				`SELECT CASE WHEN state <> 'active' THEN coalesce(state, 'unknown')
				             WHEN wait_event_type IS NULL THEN 'CPU'
				             ELSE wait_event_type || ':' || wait_event END AS what, count(*)::int AS n
				   FROM pg_stat_activity
				  WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()
				  GROUP BY 1`);
			samples++;
			for (const r of rows) totals[r.what] = (totals[r.what] ?? 0) + r.n;
			await sleep(everyMs);
		}
	})();
	return async () => {
		stopped = true;
		await loop.catch(() => undefined);
		await client.end().catch(() => undefined);
		const sessions = Object.fromEntries(Object.entries(totals).map(([k, v]) => [k, Math.round((v / Math.max(1, samples)) * 10) / 10] as const).sort((a, b) => b[1] - a[1]));
		return { samples, sessions };
	};
}
