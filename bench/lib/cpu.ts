// CPU accounting from Linux /proc: by process group (the mesh, each engine of this checkout, everything
// else) over an interval, and a process's memory.
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { cpus } from "node:os";
import path from "node:path";

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

/** The engines whose pid is not the same in `now` as in `before`: someone stopped or restarted them. */
export function restartedEngines(before: EnginePids, now: EnginePids): string[] {
	return (Object.keys(ENGINE_COMM) as (keyof typeof ENGINE_COMM)[]).filter(name => before[name] !== now[name]);
}

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
