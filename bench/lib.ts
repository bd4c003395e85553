// Helpers shared by the benchmarks: arguments, engines and build, the mesh as a child process, load
// generation (autocannon, closed loops), percentiles, CPU and database-session accounting, reporting,
// Base B test data, and the run's life cycle (watchdog, signals, clean-up).
import { randomBytes, randomInt } from "node:crypto";
import { spawn, spawnSync, type ChildProcess, type SpawnSyncOptions } from "node:child_process";
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import os, { cpus } from "node:os";
import path from "node:path";
// @ts-expect-error autocannon ships no type declarations; the shapes used are declared below.
import autocannonUntyped from "autocannon";
import { type BrokerOptions, ServiceBroker } from "moleculer";
import { type Collection, MongoClient } from "mongodb";
import { type ConnectionOptions, type NatsConnection, connect as natsConnect } from "nats";
import pg from "pg";
import { type Config, loadConfig } from "../config";
import { natsOptions, transporterOptions } from "../config/nats";
import { createZeroTrustMiddleware } from "../middlewares/zero-trust.middleware";
import { STREAMS, type StreamKey, channel } from "../lib/mesh/streams";
import { ASSET_TYPES, INCOME_SOURCES } from "../lib/base-b/catalog";
import { formatDate, todayIso } from "../lib/dates";

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
	/** FerretDB, the MongoDB-protocol front of Base B (its storage is PostgreSQL, counted above). */
	ferretdb: number | null;
	nats: number | null;
	/** Elasticsearch (Base C), this checkout's node only (by its pid: `java` is too common a name to go by). */
	elasticsearch: number | null;
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

/** The pids of this checkout's engines (postmaster, FerretDB, nats-server, Elasticsearch), from their pid files. */
export interface EnginePids { postgres?: number; ferretdb?: number; nats?: number; elasticsearch?: number }

/**
 * Reads the pid files `scripts/engines.sh` keeps under its data directory (`CREDIT_MESH_DATA`), so
 * that another checkout's engines on other ports (a CI run, say) count as foreign work, not as ours.
 */
export function enginePids(dataDir: string | undefined): EnginePids {
	const read = (file: string) => {
		try {
			const pid = Number(readFileSync(path.join(dataDir!, file), "utf8").split("\n")[0].trim());
			return Number.isInteger(pid) && pid > 0 ? pid : undefined;
		} catch {
			return undefined;
		}
	};
	if (!dataDir) return {};
	return { postgres: read("pg/postmaster.pid"), ferretdb: read("ferretdb/ferretdb.pid"), nats: read("nats/nats.pid"), elasticsearch: read("es/run/elasticsearch.pid") };
}

const ENGINE_COMM = { postgres: "postgres", ferretdb: "ferretdb", nats: "nats-server", elasticsearch: "java" } as const;
/** Engines matched only by their pid, never by name (any JVM is `java`, another checkout's Elasticsearch too). */
const PID_ONLY: ReadonlySet<string> = new Set(["elasticsearch"]);
type Group = "mesh" | keyof typeof ENGINE_COMM;

/** The given pids and all their descendants among procs. */
function withDescendants(roots: Iterable<number>, procs: Map<number, ProcSample>): Set<number> {
	const set = new Set(roots);
	for (let grew = true; grew;) {
		grew = false;
		for (const [pid, p] of procs) {
			if (!set.has(pid) && set.has(p.ppid)) {
				set.add(pid);
				grew = true;
			}
		}
	}
	return set;
}

/**
 * Starts a CPU measurement; the returned function ends it. Processes started meanwhile count in
 * full; the mesh is its pids and their descendants. An engine is its pid (from `enginePids`) and its
 * descendants when known (PostgreSQL's backends are children of the postmaster), else every
 * process of that name.
 */
export function cpuMeter(meshProcs: { pid: number; name: string }[], engines: EnginePids = {}): () => CpuReport {
	const t0 = process.hrtime.bigint();
	const before = processes();
	const self = process.cpuUsage();
	const m0 = machineJiffies();
	return () => {
		const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
		const selfUsed = process.cpuUsage(self);
		const m1 = machineJiffies();
		const after = processes();
		const mesh = withDescendants(meshProcs.map(m => m.pid), after);
		// An engine restarted meanwhile (its pid gone or reused) is matched by name instead.
		const enginePidSets = Object.fromEntries((Object.keys(ENGINE_COMM) as (keyof typeof ENGINE_COMM)[]).map(name => {
			const pid = engines[name];
			return [name, pid && after.get(pid)?.comm === ENGINE_COMM[name] ? withDescendants([pid], after) : null] as const;
		}));
		const groupOf = (pid: number, comm: string): Group | null => {
			if (mesh.has(pid)) return "mesh";
			for (const [name, set] of Object.entries(enginePidSets) as [keyof typeof ENGINE_COMM, Set<number> | null][]) {
				if (set ? set.has(pid) : !PID_ONLY.has(name) && comm === ENGINE_COMM[name]) return name;
			}
			return null;
		};
		const meshProcesses: Record<string, number> = {};
		const used: Record<Group, number> = { mesh: 0, postgres: 0, ferretdb: 0, nats: 0, elasticsearch: 0 };
		const seen: Record<Group, boolean> = { mesh: false, postgres: false, ferretdb: false, nats: false, elasticsearch: false };
		const others: Record<string, number> = {};
		for (const [pid, p] of after) {
			if (pid === process.pid) continue;
			const delta = p.cpu - (before.get(pid)?.comm === p.comm ? before.get(pid)!.cpu : 0);
			const group = groupOf(pid, p.comm);
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
				const ours = used.mesh + used.postgres + used.ferretdb + used.nats + used.elasticsearch + (selfUsed.user + selfUsed.system) / 1e6;
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
			ferretdb: seen.ferretdb ? pct(used.ferretdb) : null,
			nats: seen.nats ? pct(used.nats) : null,
			elasticsearch: seen.elasticsearch ? pct(used.elasticsearch) : null,
			others: noisy,
			...machine
		};
	};
}

/** `VmRSS` and `VmHWM` (peak) of a process from /proc/<pid>/status, in MiB; null where unreadable. */
export function memoryOf(pid: number): { rssMiB: number; hwmMiB: number } | null {
	try {
		const status = readFileSync(`/proc/${pid}/status`, "utf8");
		const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1]);
		const rss = kib("VmRSS");
		const hwm = kib("VmHWM");
		if (!Number.isFinite(rss) || !Number.isFinite(hwm)) return null;
		return { rssMiB: Math.round((rss / 1024) * 10) / 10, hwmMiB: Math.round((hwm / 1024) * 10) / 10 };
	} catch {
		return null;
	}
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

// ---------------------------------------------------------------- engines, settings, build

/** The dev engines up, their settings (`engines.sh env dev`), a fresh build and the schema migrated. */
export function prepare(root: string): { env: NodeJS.ProcessEnv; cfg: Config } {
	run("bash", ["scripts/engines.sh", "up"], { cwd: root, timeoutMs: 180_000 });
	const env: NodeJS.ProcessEnv = { ...process.env, ...enginesEnv(root, "dev") };
	delete env.NODE_ID;
	console.log("building…");
	run("npm", ["run", "--silent", "build"], { cwd: root, env, timeoutMs: 300_000 });
	run(process.execPath, ["dist/scripts/migrate.js"], { cwd: root, env, timeoutMs: 120_000 });
	// The same settings the services read (config/index.ts), from the same environment.
	return { env, cfg: loadConfig(env) };
}

/**
 * Warns when a service's source no longer holds a fragment a benchmark copied from it (an SQL
 * statement, a projection), since the raw side would then no longer do the same work.
 */
export function checkInSync(root: string, fragments: [file: string, text: string][]): void {
	const squash = (s: string) => s.replace(/\s+/g, " ").trim();
	for (const [file, text] of fragments) {
		if (!squash(readFileSync(path.join(root, file), "utf8")).includes(squash(text))) {
			console.warn(`WARNING: ${file} no longer contains this benchmark's copy of '${squash(text).slice(0, 80)}'; the raw side may not do the same work.`);
		}
	}
}

/** The audit service's insert (services/audit.service.ts, not exported there); checkInSync() watches it. */
export const AUDIT_SQL = `INSERT INTO audit_log (seq, at, consumer, action, cpf_bidx, request_id, outcome, prev_hash, hash)
					 VALUES (0, now(), $1, $2, $3, $4, $5, '', '') RETURNING seq::text`;

/**
 * A raw pool size within the server's connection limit (max_connections − 20, for the mesh, FerretDB
 * and other work), warning when the wanted size had to be lowered.
 */
export async function capPoolSize(connectionString: string, wanted: number): Promise<number> {
	const probe = new pg.Client({ connectionString, connectionTimeoutMillis: 2000 });
	await probe.connect();
	try {
		const maxConnections = Number((await probe.query("SHOW max_connections")).rows[0].max_connections);
		if (wanted <= maxConnections - 20) return wanted;
		console.warn(`--raw-pool ${wanted} is more than PostgreSQL allows (max_connections ${maxConnections}); using ${maxConnections - 20}`);
		return maxConnections - 20;
	} finally {
		await probe.end();
	}
}

/**
 * The commit the measured code was built from, and the files outside bench/ that differed from it
 * (the build compiles the working tree, so uncommitted changes are part of what was measured).
 */
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

// ---------------------------------------------------------------- state a run must undo

/** What the shared helpers start and cleanup must stop; each benchmark extends it. */
export interface BenchState {
	children: ChildProcess[];
	/** A broker watching the namespace while the mesh starts. */
	observer?: ServiceBroker;
	cannon?: AutocannonInstance;
	/** Set when the mesh is stopped on purpose. */
	meshStopping?: boolean;
	/** The benchmark's API consumer, revoked once the mesh side is done. */
	consumer?: { base: string; id: string; adminKey: string };
	/** The mesh's namespace, set as soon as it is drawn: its JetStream streams are deleted at the end. */
	namespace?: string;
	/** The mesh's NATS (TRANSPORTER), where those streams are. */
	transporter?: string;
	natsCa?: string;
}

/**
 * Runs main, then cleanup, and exits; cleanup also runs on an error, Ctrl-C / SIGTERM and when the
 * watchdog fires after budgetMs. No mesh process outlives this one.
 */
export function runMain(state: BenchState, o: { budgetMs: number; main: () => Promise<void>; cleanup: () => Promise<void> }): void {
	process.on("exit", () => state.children.forEach(c => alive(c) && c.kill("SIGKILL")));
	for (const signal of ["SIGINT", "SIGTERM"] as const) {
		process.once(signal, () => {
			console.error(`\n${signal}: stopping the mesh and leaving`);
			void o.cleanup().finally(() => process.exit(130));
		});
	}
	const watchdog = setTimeout(() => {
		console.error(`benchmark overran its ${Math.round(o.budgetMs / 1000)} s budget; stopping`);
		void o.cleanup().finally(() => process.exit(1));
	}, o.budgetMs);
	watchdog.unref();
	o.main()
		.then(() => o.cleanup())
		.then(() => process.exit(0))
		.catch(async err => {
			console.error(`benchmark failed: ${err instanceof Error ? err.message : String(err)}`);
			await o.cleanup();
			process.exit(1);
		});
}

/** The common first steps of cleanup: stop the load, the observer, revoke the consumer, stop the mesh. */
export async function stopEverything(state: BenchState): Promise<void> {
	state.cannon?.stop();
	await state.observer?.stop().catch(() => undefined);
	if (state.children.some(alive)) await revokeConsumer(state);
	await stopMesh(state);
	await removeMeshStreams(state).catch(err => console.error(`could not delete the mesh's JetStream streams: ${err.message}`));
}

// ---------------------------------------------------------------- the mesh as child processes

export interface MeshProc { pid: number; name: string; child: ChildProcess }
interface MeshGroup { name: string; args: string[]; env: NodeJS.ProcessEnv }

/**
 * moleculer-runner as child processes: everything in dist/services in one process (as `npm start`
 * runs it) or one per service file (split); or only the named services, in one process or one each.
 */
function meshGroups(env: NodeJS.ProcessEnv, root: string, o: { split: boolean; services?: string[] }): MeshGroup[] {
	if (!o.services && o.split) {
		return readdirSync(path.join(root, "dist/services")).filter(f => f.endsWith(".service.js")).map(f => ({ name: f, args: [`dist/services/${f}`], env }));
	}
	if (!o.services) return [{ name: "dist/services", args: ["dist/services"], env }];
	const sets = o.split ? o.services.map(s => [s]) : [o.services];
	return sets.map(set => ({ name: set.join(","), args: [], env: { ...env, SERVICEDIR: "dist/services", SERVICES: set.join(",") } }));
}

export interface MeshOptions {
	split: boolean;
	/** Start only these services (default: all of dist/services). */
	services?: string[];
	/** Services that must be seen on the namespace before the run goes on. */
	waitFor: string[];
	/** Accept a 503 from /health/ready when this says the bases needed are up. */
	acceptPartial?: (report: any) => boolean;
	/** Appended to start-up errors (a hint at an option). */
	hint?: string;
}

/**
 * For a mesh started with only the services a benchmark needs: ready when Bases A and B and the
 * transporter are up, whatever the gateway reports for bases whose services were not started.
 */
export const basesAandBUp = (report: any): boolean =>
	report?.bases?.A?.status === "up" && report?.bases?.B?.status === "up" && report?.transporter !== "down";

export interface Mesh { base: string; port: number; namespace: string; logFile: string; procs: MeshProc[]; lastReady: string }

/**
 * Starts the mesh as child processes on a free port of 127.0.0.1 with `NAMESPACE=bench-<random>`
 * (so it meets no other mesh on the shared NATS) and `LOG_LEVEL=warn`, logging to
 * `$TMPDIR/credit-mesh-<namespace>.log`, and waits until it is ready.
 */
export async function launchMesh(state: BenchState, root: string, env: NodeJS.ProcessEnv, cfg: Config, o: MeshOptions): Promise<Mesh> {
	if (o.split && !cfg.transporter) throw new Error("--split needs a transporter (TRANSPORTER or TRANSPORTER_FILE)");
	const port = await freePort();
	const namespace = `bench-${randomBytes(4).toString("hex")}`;
	state.namespace = namespace;
	state.transporter = cfg.transporter;
	state.natsCa = cfg.natsCa;
	const logFile = path.join(os.tmpdir(), `credit-mesh-${namespace}.log`);
	const meshEnv: NodeJS.ProcessEnv = { ...env, PORT: String(port), HOST: "127.0.0.1", LOG_LEVEL: "warn", NAMESPACE: namespace, NODE_ENV: "development" };
	console.log(`starting the mesh: namespace ${namespace}, port ${port}, log ${logFile}`);
	const runner = [path.join(root, "node_modules/moleculer/bin/moleculer-runner.js"), "--config", "dist/moleculer.config.js"];
	const procs = meshGroups(meshEnv, root, o).map(g => {
		const child = spawnLogged(process.execPath, [...runner, ...g.args], g.env, root, logFile);
		state.children.push(child);
		child.once("exit", (code, signal) => {
			if (!state.meshStopping) console.error(`mesh process (${g.name}) exited early (${code ?? signal}); log: ${logFile}`);
		});
		return { pid: child.pid ?? -1, name: g.name.replace(/\.service\.js$/, ""), child };
	});
	const base = `http://127.0.0.1:${port}`;
	const lastReady = await waitReady(state, { base, natsUrl: cfg.transporter, namespace, logFile, cfg, ...o });
	return { base, port, namespace, logFile, procs, lastReady };
}

/**
 * GET /health/ready = 200 (or a 503 that acceptPartial takes), 60 s at most. Then every service of
 * waitFor must be seen on the namespace (the admin key is upserted in consumers.started, which
 * readiness does not cover). Returns the last readiness answer.
 */
async function waitReady(state: BenchState, o: MeshOptions & { base: string; natsUrl: string | undefined; namespace: string; logFile: string; cfg: Config }): Promise<string> {
	const until = Date.now() + 60_000;
	const hint = o.hint ?? "";
	let last = "no answer";
	let ready = false;
	while (!ready && Date.now() < until) {
		if (state.children.some(c => !alive(c))) throw new Error(`the mesh exited during start-up${hint}:\n${tail(o.logFile)}`);
		try {
			const res = await fetch(`${o.base}/health/ready`, { signal: AbortSignal.timeout(3000) });
			const text = await res.text();
			last = `${res.status} ${text}`;
			ready = res.status === 200 || (o.acceptPartial?.(JSON.parse(text)) ?? false);
		} catch (err) {
			last = (err as Error).message;
		}
		if (!ready) await sleep(250);
	}
	if (!ready) throw new Error(`GET /health/ready was not ready within 60 s${hint}; last answer: ${last}\n${tail(o.logFile)}`);
	if (o.natsUrl) {
		state.observer = observerBroker(o.namespace, "bench-observer", o.cfg);
		await state.observer.start();
		await state.observer.waitForServices(o.waitFor, Math.max(1000, until - Date.now()), 200);
		await state.observer.stop();
		state.observer = undefined;
	}
	return last;
}

/** A node that only watches a mesh's namespace. It beats like the mesh's nodes (HEARTBEAT_*), or they drop it. */
export function observerBroker(namespace: string, name: string, cfg: Config): ServiceBroker {
	// It calls $node actions of the mesh's nodes, which answer operators only: it signs as one.
	return new ServiceBroker({
		namespace, nodeID: `${name}-${randomBytes(3).toString("hex")}`, transporter: transporterOptions(cfg) as BrokerOptions["transporter"], serializer: "JSON", logger: false,
		heartbeatInterval: cfg.heartbeatInterval, heartbeatTimeout: cfg.heartbeatTimeout,
		metadata: { meshGroup: "operators" }, middlewares: [createZeroTrustMiddleware(cfg)]
	});
}

/** A NATS connection to the transporter's server (JetStream management), which must be on 127.0.0.1. */
export async function natsConnection(cfg: Pick<Config, "transporter" | "natsCa">, name: string, more: Partial<ConnectionOptions> = {}): Promise<NatsConnection> {
	const transporter = cfg.transporter ?? "";
	const url = new URL(transporter);
	if (!["127.0.0.1", "localhost", "[::1]"].includes(url.hostname)) throw new Error(`TRANSPORTER points at ${url.hostname}: the benchmarks only talk to 127.0.0.1`);
	return natsConnect({ ...natsOptions(cfg, transporter), name, maxReconnectAttempts: 3, ...more });
}

/** A mesh's JetStream streams: every stream of lib/mesh/streams.ts under the namespace's prefix (`<ns>_TRANSACTIONS`, `<ns>_CONSULTATIONS`…). */
export function namespaceStreams(namespace: string): string[] {
	if (!namespace) throw new Error("no namespace"); // channel() would name the streams of the namespace "default"
	return (Object.keys(STREAMS) as StreamKey[]).map(k => channel(namespace, k).name);
}

/** Deletes the named JetStream streams; returns the names of those that were there. */
export async function deleteStreams(nc: NatsConnection, names: string[]): Promise<string[]> {
	const jsm = await nc.jetstreamManager({ timeout: 5000 });
	const deleted: string[] = [];
	for (const name of names) if (await jsm.streams.delete(name).catch(() => false)) deleted.push(name);
	return deleted;
}

/**
 * Deletes the streams the benchmark's mesh created on the NATS server (they outlive the mesh: each
 * run's namespace would otherwise leave its own, CONSULTATIONS filling up with nobody to consume it).
 */
export async function removeMeshStreams(state: BenchState): Promise<void> {
	if (!state.namespace || !state.transporter) return;
	const nc = await natsConnection({ transporter: state.transporter, natsCa: state.natsCa }, `credit-mesh-bench-${process.pid}`);
	try {
		const gone = await deleteStreams(nc, namespaceStreams(state.namespace));
		if (gone.length) console.log(`deleted the mesh's JetStream streams: ${gone.join(", ")}`);
	} finally {
		await nc.close();
	}
}

export async function stopMesh(state: BenchState): Promise<void> {
	state.meshStopping = true;
	await Promise.all(state.children.map(c => stopChild(c)));
}

/** The lines at level warn or above in the mesh's log. */
export function meshWarnings(logFile: string): string[] {
	return tail(logFile, 100000).split("\n").filter(l => l && /"level":"(warn|error|fatal)"|\b(WARN|ERROR|FATAL)\b/.test(l));
}

// ---------------------------------------------------------------- HTTP

export interface Reply { status: number; body: any }

export async function call(base: string, method: string, urlPath: string, key: string, body?: unknown): Promise<Reply> {
	const res = await fetch(base + urlPath, {
		method,
		headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
		body: body === undefined ? undefined : JSON.stringify(body),
		signal: AbortSignal.timeout(15_000)
	});
	return reply(res);
}

/** A response's status and body, parsed as JSON when it is JSON. */
async function reply(res: Response): Promise<Reply> {
	const text = await res.text();
	let parsed: unknown = text;
	try {
		parsed = text ? JSON.parse(text) : null;
	} catch {
		// not JSON: keep the text
	}
	return { status: res.status, body: parsed };
}

/** POSTs a body as it is (NDJSON, say) under the given media type, with a bearer key. */
export async function postText(base: string, urlPath: string, key: string, body: string, contentType: string, timeoutMs = 60_000): Promise<Reply> {
	const res = await fetch(base + urlPath, {
		method: "POST",
		headers: { authorization: `Bearer ${key}`, "content-type": contentType },
		body,
		signal: AbortSignal.timeout(timeoutMs)
	});
	return reply(res);
}

export function expect(reply: Reply, status: number, what: string): any {
	if (reply.status !== status) throw new Error(`${what}: expected ${status}, got ${reply.status} ${JSON.stringify(reply.body).slice(0, 300)}`);
	return reply.body;
}

/**
 * An API consumer for the load, with only the scopes it needs and a rate limit of 1 000 000/min so
 * that rate limiting never interferes; its key exists only in this process's memory.
 */
export async function createConsumer(state: BenchState, base: string, adminKey: string, name: string, scopes: string[]): Promise<{ id: string; key: string }> {
	const consumer = expect(await call(base, "POST", "/api/v1/consumers", adminKey, { name, scopes, rateLimit: 1_000_000 }), 201, "POST /api/v1/consumers");
	state.consumer = { base, id: consumer.id, adminKey };
	return consumer;
}

/** Revokes the benchmark's API consumer. */
export async function revokeConsumer(state: BenchState): Promise<void> {
	const c = state.consumer;
	state.consumer = undefined;
	if (!c) return;
	const res = await call(c.base, "DELETE", `/api/v1/consumers/${c.id}`, c.adminKey).catch(() => null);
	if (res?.status !== 204) console.warn(`could not revoke the benchmark's API consumer ${c.id} (${res?.status ?? "no answer"})`);
}

// ---------------------------------------------------------------- autocannon

interface Histogram { average: number; mean: number; p50: number; p99: number; total: number; min: number; max: number }
export interface AutocannonResult {
	requests: Histogram;
	latency: Histogram;
	duration: number;
	errors: number;
	timeouts: number;
	non2xx: number;
	statusCodeStats: Record<string, { count: number }>;
}
export interface AutocannonInstance extends PromiseLike<AutocannonResult> {
	on(event: "response", listener: (client: unknown, status: number, bytes: number, ms: number) => void): void;
	stop(): void;
}
const autocannon = autocannonUntyped as (opts: Record<string, unknown>) => AutocannonInstance;

/** GETs with a bearer key over `connections` keep-alive connections, each request to the next path. */
function httpLoad(state: BenchState, o: { base: string; key: string; paths: string[]; connections: number; seconds: number; latencies?: number[] }): AutocannonInstance {
	let i = 0;
	const instance = autocannon({
		url: o.base,
		connections: o.connections,
		duration: o.seconds,
		timeout: 10,
		headers: { authorization: `Bearer ${o.key}` },
		requests: [{
			method: "GET",
			setupRequest(req: { path: string }) {
				req.path = o.paths[i++ % o.paths.length];
				return req;
			}
		}]
	});
	if (o.latencies) {
		const latencies = o.latencies;
		instance.on("response", (_client, status, _bytes, ms) => {
			if (status >= 200 && status < 300) latencies.push(ms);
		});
	}
	state.cannon = instance;
	return instance;
}

// ---------------------------------------------------------------- closed loops

/** `concurrency` async workers calling op back to back for `seconds`; latencies (ms) of the successes. */
export async function closedLoop(concurrency: number, seconds: number, op: (i: number) => Promise<unknown>, latencies?: number[]) {
	let next = 0;
	let errors = 0;
	const firstErrors: string[] = [];
	const t0 = process.hrtime.bigint();
	const end = t0 + BigInt(Math.round(seconds * 1e9));
	await Promise.all(Array.from({ length: concurrency }, async () => {
		while (process.hrtime.bigint() < end) {
			const start = process.hrtime.bigint();
			try {
				await op(next++);
				latencies?.push(Number(process.hrtime.bigint() - start) / 1e6);
			} catch (err) {
				errors++;
				if (firstErrors.length < 5) firstErrors.push((err as Error).message);
			}
		}
	}));
	return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, errors, firstErrors };
}

// ---------------------------------------------------------------- measuring a side

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
	const result = await work();
	const cpu = meter();
	const db: Record<string, WaitProfile> = {};
	for (const [name, stop] of samplers) db[name] = await stop();
	const now = enginePids(watch.dataDir);
	const enginesRestarted = (Object.keys(ENGINE_COMM) as (keyof typeof ENGINE_COMM)[]).filter(name => engines[name] !== now[name]);
	return { result, cpu, db, idleBefore, enginesRestarted };
}

export interface Observation<T> {
	result: T;
	cpu: CpuReport;
	db: Record<string, WaitProfile>;
	/** CPU in the 2 s before the measurement, with none of our load running. */
	idleBefore: CpuReport;
	/** Engines whose pid changed during the measurement: someone stopped or restarted them. */
	enginesRestarted: string[];
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
	detail: Record<string, unknown>;
}

function latencyStats(latencies: number[]) {
	const sorted = sortedCopy(latencies);
	return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), mean: latencies.reduce((a, b) => a + b, 0) / (latencies.length || 1), ok: latencies.length };
}

/** Ours: autocannon over the paths (in the order given), a warm-up run, then the measured one. */
export async function measureHttp(state: BenchState, o: { base: string; key: string; paths: string[]; connections: number; seconds: number; warmupSeconds: number }, watch: Watch): Promise<SideResult> {
	await httpLoad(state, { ...o, seconds: o.warmupSeconds });
	const latencies: number[] = [];
	const { result: r, cpu, db, idleBefore, enginesRestarted } = await observe(watch, async () => await httpLoad(state, { ...o, latencies }));
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

// ---------------------------------------------------------------- report

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

/** Both sides' table, their ratio and the notes; returns the ratio (ours / raw). */
export function printComparison(o: { setup: string; gatewayLabel: string; rawLabel: string; gateway: SideResult; raw: SideResult; notes: (string | false)[]; warnings: string[] }) {
	const { gateway, raw } = o;
	const ratio = { reqPerSec: gateway.reqPerSec / raw.reqPerSec, p50: gateway.p50 / raw.p50, p99: gateway.p99 / raw.p99 };
	console.log(`\n${o.setup}\n`);
	const row = (label: string, s: SideResult) => [label, fmt(s.reqPerSec, 0), fmt(s.p50), fmt(s.p99), String(s.errors)];
	console.log(table([["path", "req/s", "p50 ms", "p99 ms", "errors"], row(o.gatewayLabel, gateway), row(o.rawLabel, raw)]));
	console.log(`\nratio ours/raw: req/s ${fmt(ratio.reqPerSec, 3)} (${fmt(ratio.reqPerSec * 100, 1)} %), p50 latency ${fmt(ratio.p50)}×, p99 latency ${fmt(ratio.p99)}×`);
	o.notes.filter((n): n is string => !!n).forEach((note, i) => console.log(`${i === 0 ? "\n" : ""}note: ${note}`));
	const noise = noiseWarning([["gateway", gateway], ["raw", raw]]);
	if (noise) console.log(noise);
	if (o.warnings.length) console.log(`\nthe mesh logged ${o.warnings.length} warning/error line(s); first: ${o.warnings[0].slice(0, 300)}`);
	return ratio;
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

export function dbText(db: Record<string, WaitProfile>): string {
	const one = (w: WaitProfile) => Object.entries(w.sessions).filter(([, n]) => n >= 0.1).map(([what, n]) => `${what} ${n}`).join(", ") || "none";
	const entries = Object.entries(db);
	if (entries.length === 1) return one(entries[0][1]);
	return entries.map(([name, w]) => `${name}: ${one(w)}`).join("; ") || "not sampled";
}

/** CPU of the engines and of anything else while none of our load ran, when it is more than noise (10 % of a core). */
export function busyBefore(c: CpuReport): string | null {
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

export function writeResults(root: string, name: string, data: unknown): string {
	const dir = path.join(root, "bench", "results");
	mkdirSync(dir, { recursive: true });
	const out = path.join(dir, `${name}.json`);
	writeFileSync(out, JSON.stringify(data, null, 2) + "\n");
	return path.relative(root, out);
}

// ---------------------------------------------------------------- test data

export const STREETS = ["Rua das Flores", "Avenida Paulista", "Rua Augusta", "Travessa São Bento", "Rua XV de Novembro"];
export const CITIES = ["São Paulo - SP", "Recife - PE", "Curitiba - PR", "Belo Horizonte - MG", "Porto Alegre - RS"];

export const pick = <T>(xs: readonly T[]): T => xs[randomInt(xs.length)];

export function shuffled<T>(xs: T[]): T[] {
	const out = [...xs];
	for (let i = out.length - 1; i > 0; i--) {
		const j = randomInt(i + 1);
		[out[i], out[j]] = [out[j], out[i]];
	}
	return out;
}

const DAY_MS = 86_400_000;
const isoOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** Payload B as `PUT /api/v1/profiles/:cpf` takes it (dates `DD/MM/YYYY`). */
export interface ProfilePayload {
	cpf: string;
	dataNascimento: string;
	endereco: string;
	fonteDeRenda: string;
	bens: { tipo: string; inicioPosse: string; quitado: boolean }[];
}

/**
 * A plausible payload B: born 1945 up to 18 years ago, an address of letters, digits and spaces, an
 * income source and 0–4 assets of the documented vocabularies, each held since a day between the
 * birth and yesterday (UTC), so the service's date checks always pass.
 */
export function randomProfile(cpf: string, today = todayIso()): ProfilePayload {
	const todayMs = Date.parse(`${today}T00:00:00Z`);
	const earliest = Date.parse("1945-01-01T00:00:00Z");
	const latestBirth = todayMs - Math.ceil(18 * 365.25) * DAY_MS;
	const birthMs = earliest + randomInt(Math.floor((latestBirth - earliest) / DAY_MS) + 1) * DAY_MS;
	const heldDays = Math.floor((todayMs - DAY_MS - birthMs) / DAY_MS) + 1;
	const bens = Array.from({ length: randomInt(5) }, () => ({
		tipo: pick(ASSET_TYPES),
		inicioPosse: formatDate(isoOf(birthMs + randomInt(heldDays) * DAY_MS)),
		quitado: randomInt(2) === 1
	}));
	return {
		cpf,
		dataNascimento: formatDate(isoOf(birthMs)),
		endereco: `${pick(STREETS)} ${randomInt(1, 3000)} ${pick(CITIES).split(" - ")[0]}`,
		fonteDeRenda: pick(INCOME_SOURCES),
		bens
	};
}

// ---------------------------------------------------------------- Base B (MongoDB protocol)

/** The `profiles` collection (mixins/base-b.mixin.ts) with the driver the services use, `poolSize` connections. */
export async function profilesCollection(mongoUrl: string, poolSize: number): Promise<{ client: MongoClient; profiles: Collection }> {
	// The adapter's options (mixins/base-b.mixin.ts) but the pool size.
	const client = await MongoClient.connect(mongoUrl, { useUnifiedTopology: true, serverSelectionTimeoutMS: 2000, connectTimeoutMS: 2000, socketTimeoutMS: 30_000, poolSize });
	return { client, profiles: client.db().collection("profiles") };
}

/**
 * The PostgreSQL database FerretDB stores Base B in, as the role FerretDB opens it with (the Mongo
 * URL's user: FerretDB passes the client's credentials on), so its sessions can be sampled.
 */
export function ferretStorageUrl(mongoUrl: string, postgresUrl: string): string {
	const m = new URL(mongoUrl);
	const p = new URL(postgresUrl);
	p.username = m.username;
	p.password = m.password;
	p.pathname = "/credit_ferret";
	p.search = "";
	return p.toString();
}

/** Deletes profiles by `_id` in batches ($in is not pushed down by FerretDB v1: each batch scans). */
export async function deleteProfiles(profiles: Collection, ids: string[], batch = 2000): Promise<number> {
	let deleted = 0;
	for (let i = 0; i < ids.length; i += batch) {
		deleted += (await profiles.deleteMany({ _id: { $in: ids.slice(i, i + batch) } })).deletedCount ?? 0;
	}
	return deleted;
}

/** Runs `one` `count` times on `parallelism` workers, printing progress every 500 (seeding through the API). */
export async function inParallel(count: number, parallelism: number, label: string, one: () => Promise<void>): Promise<void> {
	const started = Date.now();
	let next = 0;
	let done = 0;
	await Promise.all(Array.from({ length: parallelism }, async () => {
		while (next < count) {
			next++;
			await one();
			if (++done % 500 === 0) process.stdout.write(`  ${done}/${count} ${label} (${((Date.now() - started) / 1000).toFixed(0)} s)\n`);
		}
	}));
}
