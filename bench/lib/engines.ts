// The engines, their settings and the build a benchmark measures; the raw sides' copies of service code
// and the limits they keep to.
import { spawnSync, type SpawnSyncOptions } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import pg from "pg";
import { type Config, loadConfig } from "../../config";
import type { DataKey } from "../../config/keys";
import { AuditWriter, type Transactor } from "../../lib/base-a/audit-writer";

/** Runs a command to completion (output shown), throwing when it fails or overruns. */
function run(cmd: string, args: string[], opts: SpawnSyncOptions & { timeoutMs: number }): void {
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

/** The dev engines up, their settings (`engines.sh env dev`), a fresh build and the schema migrated. */
export function prepare(root: string): { env: NodeJS.ProcessEnv; cfg: Config } {
	run("bash", ["scripts/engines.sh", "up"], { cwd: root, timeoutMs: 180_000 });
	const env: NodeJS.ProcessEnv = { ...process.env, ...enginesEnv(root, "dev") };
	delete env.NODE_ID;
	console.log("building…");
	run("npm", ["run", "--silent", "build"], { cwd: root, env, timeoutMs: 300_000 });
	run(process.execPath, ["dist/scripts/migrate.js"], { cwd: root, env, timeoutMs: 120_000 });
	// The same settings the services read (config/index.ts), from the same environment.
	const cfg = loadConfig(env);
	auditKeys = cfg.auditChainKeys;
	return { env, cfg };
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

/** The audit chain's keys, from the settings prepare() read. */
let auditKeys: DataKey[] | undefined;
const auditWriters = new WeakMap<pg.Pool, AuditWriter>();

/**
 * Appends an audit row on a raw pool with the audit service's own writer (lib/base-a/audit-writer.ts: the
 * keyed chain, group-committed), so the raw side does the same work as audit.append.
 */
/** The audit writer's transactions on a raw `pg` pool (the benchmarks' raw sides), as the service's pool gives them. */
export function pgTransactor(pool: pg.Pool): Transactor {
	return async work => {
		const client = await pool.connect();
		try {
			await client.query("BEGIN");
			const result = await work(async <R extends object>(sql: string, bind: unknown[] = []) => (await client.query(sql, bind)).rows as R[]);
			await client.query("COMMIT");
			return result;
		} catch (err) {
			await client.query("ROLLBACK").catch(() => undefined);
			throw err;
		} finally {
			client.release();
		}
	};
}

export function rawAudit(pool: pg.Pool, consumer: string, action: string, cpfBidx: string | null, requestId: string, outcome: string): Promise<number> {
	let writer = auditWriters.get(pool);
	if (!writer) {
		if (!auditKeys) throw new Error("rawAudit: call prepare() first (it reads AUDIT_CHAIN_KEYS)");
		writer = new AuditWriter(pgTransactor(pool), auditKeys);
		auditWriters.set(pool, writer);
	}
	return writer.append({ consumer, action, cpfBidx, requestId, outcome });
}

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

/** Refuses an engine's URL that is not on this machine: the benchmarks only talk to 127.0.0.1. */
export function loopbackOnly(url: URL, setting: string): void {
	if (!["127.0.0.1", "localhost", "[::1]"].includes(url.hostname)) throw new Error(`${setting} points at ${url.hostname}: the benchmarks only talk to 127.0.0.1`);
}
