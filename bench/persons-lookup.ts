// `npm run bench [-- --persons N --concurrency C --duration S --raw-pool P --split --base-a --keep-data]`
//
// GET /api/v1/persons/:cpf through the whole mesh (HTTP → gateway → cpf-lookup → audit), against
// raw `pg` doing the same database work (the lookup query and the audit insert) at the same
// concurrency, in one run. See bench/README.md.
import { randomBytes, randomInt, randomUUID } from "node:crypto";
import type { ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
// @ts-expect-error autocannon ships no type declarations; the shapes used are declared below.
import autocannonUntyped from "autocannon";
import { type BrokerOptions, ServiceBroker } from "moleculer";
import pg from "pg";
import { loadConfig, need } from "../config";
import { randomCpf } from "../lib/cpf";
import { PiiCipher } from "../lib/pii";
import { debtView } from "../lib/base-a/debts";
import {
	alive, cpuMeter, type CpuReport, enginesEnv, flagArg, freePort, numberArg, percentile, run, sleep,
	sortedCopy, spawnLogged, stopChild, tail, waitSampler, type WaitProfile
} from "./lib";

// ------------------------------------------------------------------ autocannon's shapes

interface Histogram { average: number; mean: number; p50: number; p99: number; total: number; min: number; max: number }
interface AutocannonResult {
	requests: Histogram;
	latency: Histogram;
	duration: number;
	errors: number;
	timeouts: number;
	non2xx: number;
	statusCodeStats: Record<string, { count: number }>;
}
interface AutocannonInstance extends PromiseLike<AutocannonResult> {
	on(event: "response", listener: (client: unknown, status: number, bytes: number, ms: number) => void): void;
	stop(): void;
}
const autocannon = autocannonUntyped as (opts: Record<string, unknown>) => AutocannonInstance;

// ------------------------------------------------------------------ the database work, as the services do it

// Copied from services/cpf-lookup.service.ts and services/audit.service.ts (not exported there);
// checkSqlInSync() warns when they drift apart.
const LOOKUP_SQL = `
	SELECT p.cpf_enc, p.nome_enc, p.endereco_enc,
	       d.id, d.valor_cents, d.empresa, d.data_vencimento, d.data_pagamento
	  FROM persons p LEFT JOIN debts d ON d.person_id = p.id
	 WHERE p.cpf_bidx = $1
	 ORDER BY d.data_vencimento, d.created_at`;
const AUDIT_SQL = `INSERT INTO audit_log (seq, at, consumer, action, cpf_bidx, request_id, outcome, prev_hash, hash)
					 VALUES (0, now(), $1, $2, $3, $4, $5, '', '') RETURNING seq::text`;

const ROOT = path.resolve(__dirname, "..");
const RESULTS_DIR = path.join(ROOT, "bench", "results");
const WARMUP_SECONDS = 3;

const RAW_LABEL = "raw pg (select + audit insert)";
/** What our side crosses: with --split every call goes over NATS; in one process preferLocal keeps them local. */
const gatewayLabel = (split: boolean) => (split ? "HTTP → gateway → NATS → cpf-lookup → NATS → audit" : "HTTP → gateway → cpf-lookup → audit (one process)");
/** The gateway and Base A: everything GET /persons/:cpf and the seeding touch. */
const SERVICES = ["api", "persons", "cpf-lookup", "debt-write", "audit", "consumers", "idempotency"];

const argv = process.argv.slice(2);
const opts = {
	persons: numberArg(argv, "persons", 2000),
	concurrency: numberArg(argv, "concurrency", 32),
	duration: numberArg(argv, "duration", 15),
	seedParallelism: numberArg(argv, "seed-parallelism", 8),
	/** Connections of the raw side's pool; by default as many as the concurrency. */
	rawPool: 0,
	/** Each service in its own process, so every hop really crosses NATS. */
	split: flagArg(argv, "split"),
	/** Only the gateway and Base A (when the other bases' engines are not available), not all of dist/services. */
	baseAOnly: flagArg(argv, "base-a"),
	/** Leave the seeded persons in the dev database (they are deleted by default). */
	keepData: flagArg(argv, "keep-data")
};
opts.rawPool = numberArg(argv, "raw-pool", opts.concurrency);

// ------------------------------------------------------------------ state that cleanup() undoes

const state: {
	children: ChildProcess[];
	observer?: ServiceBroker;
	pool?: pg.Pool;
	cannon?: AutocannonInstance;
	/** Set when the mesh is stopped on purpose. */
	meshStopping?: boolean;
	/** The benchmark's API consumer, revoked once the mesh side is done. */
	consumer?: { base: string; id: string; adminKey: string };
	/** Blind indexes of the persons seeded so far, deleted at the end unless --keep-data. */
	seeded: string[];
	cleaning?: Promise<void>;
} = { children: [], seeded: [] };

/** Revokes the benchmark's API consumer (its key existed only in this process's memory). */
async function revokeConsumer(): Promise<void> {
	const c = state.consumer;
	state.consumer = undefined;
	if (!c) return;
	const res = await call(c.base, "DELETE", `/api/v1/consumers/${c.id}`, c.adminKey).catch(() => null);
	if (res?.status !== 204) console.warn(`could not revoke the benchmark's API consumer ${c.id} (${res?.status ?? "no answer"})`);
}

/** Deletes the seeded persons; their debts go with them (ON DELETE CASCADE). Audit rows stay: the log is insert-only. */
async function removeSeeded(): Promise<void> {
	if (opts.keepData || !state.pool || state.seeded.length === 0) return;
	const bidxs = state.seeded.splice(0);
	const { rowCount } = await state.pool.query("DELETE FROM persons WHERE cpf_bidx = ANY($1::char(64)[])", [bidxs]);
	console.log(`removed the ${rowCount} seeded persons and their debts (--keep-data keeps them)`);
}

async function cleanup(): Promise<void> {
	state.cleaning ??= (async () => {
		state.cannon?.stop();
		await state.observer?.stop().catch(() => undefined);
		if (state.children.some(alive)) await revokeConsumer();
		state.meshStopping = true;
		await Promise.all(state.children.map(c => stopChild(c)));
		await removeSeeded().catch(err => console.error(`could not remove the seeded persons: ${err.message}`));
		await state.pool?.end().catch(() => undefined);
	})();
	return state.cleaning;
}

// Last resort if the process leaves without cleanup(): no orphaned mesh.
process.on("exit", () => state.children.forEach(c => alive(c) && c.kill("SIGKILL")));
for (const signal of ["SIGINT", "SIGTERM"] as const) {
	process.once(signal, () => {
		console.error(`\n${signal}: stopping the mesh and leaving`);
		void cleanup().finally(() => process.exit(130));
	});
}

// ------------------------------------------------------------------ HTTP helpers

interface Reply { status: number; body: any }

async function call(base: string, method: string, urlPath: string, key: string, body?: unknown): Promise<Reply> {
	const res = await fetch(base + urlPath, {
		method,
		headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
		body: body === undefined ? undefined : JSON.stringify(body),
		signal: AbortSignal.timeout(15_000)
	});
	const text = await res.text();
	let parsed: unknown = text;
	try {
		parsed = text ? JSON.parse(text) : null;
	} catch {
		// not JSON: keep the text
	}
	return { status: res.status, body: parsed };
}

function expect(reply: Reply, status: number, what: string): any {
	if (reply.status !== status) throw new Error(`${what}: expected ${status}, got ${reply.status} ${JSON.stringify(reply.body).slice(0, 300)}`);
	return reply.body;
}

// ------------------------------------------------------------------ setup

function checkSqlInSync(): void {
	const squash = (s: string) => s.replace(/\s+/g, " ").trim();
	for (const [file, sql] of [["services/cpf-lookup.service.ts", LOOKUP_SQL], ["services/audit.service.ts", AUDIT_SQL]] as const) {
		if (!squash(readFileSync(path.join(ROOT, file), "utf8")).includes(squash(sql))) {
			console.warn(`WARNING: the SQL in ${file} no longer matches this benchmark's copy; the raw side may not do the same work.`);
		}
	}
}

/**
 * moleculer-runner as a child process: everything in dist/services, or with --base-a only the
 * services this route and the seeding use (SERVICES); one process per service with --split.
 */
function startMesh(env: NodeJS.ProcessEnv, logFile: string): { pid: number; name: string; child: ChildProcess }[] {
	const runner = [path.join(ROOT, "node_modules/moleculer/bin/moleculer-runner.js"), "--config", "dist/moleculer.config.js"];
	let groups: { name: string; args: string[]; env: NodeJS.ProcessEnv }[];
	if (!opts.baseAOnly && opts.split) {
		groups = readdirSync(path.join(ROOT, "dist/services")).filter(f => f.endsWith(".service.js")).map(f => ({ name: f, args: [`dist/services/${f}`], env }));
	} else if (!opts.baseAOnly) {
		groups = [{ name: "dist/services", args: ["dist/services"], env }];
	} else {
		const sets = opts.split ? SERVICES.map(s => [s]) : [SERVICES];
		groups = sets.map(set => ({ name: set.join(","), args: [], env: { ...env, SERVICEDIR: "dist/services", SERVICES: set.join(",") } }));
	}
	return groups.map(g => {
		const child = spawnLogged(process.execPath, [...runner, ...g.args], g.env, ROOT, logFile);
		state.children.push(child);
		child.once("exit", (code, signal) => {
			if (!state.meshStopping) console.error(`mesh process (${g.name}) exited early (${code ?? signal}); log: ${logFile}`);
		});
		return { pid: child.pid ?? -1, name: g.name.replace(/\.service\.js$/, ""), child };
	});
}

/**
 * GET /health/ready = 200 (bounded wait). With --base-a the other bases are reported down (their
 * services are not started), so Base A up and the transporter connected is enough. Then every
 * service must be seen on the namespace (the admin key is upserted in consumers.started, which
 * readiness does not cover).
 */
async function waitReady(base: string, natsUrl: string | undefined, namespace: string, logFile: string): Promise<void> {
	const until = Date.now() + 60_000;
	let last = "no answer";
	let ready = false;
	while (!ready && Date.now() < until) {
		if (state.children.some(c => !alive(c))) {
			throw new Error(`the mesh exited during start-up${opts.baseAOnly ? "" : " (--base-a starts only the gateway and Base A)"}:\n${tail(logFile)}`);
		}
		try {
			const res = await fetch(`${base}/health/ready`, { signal: AbortSignal.timeout(3000) });
			const text = await res.text();
			last = `${res.status} ${text}`;
			const report = JSON.parse(text);
			ready = res.status === 200 || (opts.baseAOnly && report?.bases?.A?.status === "up" && report.transporter !== "down");
		} catch (err) {
			last = (err as Error).message;
		}
		if (!ready) await sleep(250);
	}
	if (!ready) {
		const hint = opts.baseAOnly ? "" : " (--base-a starts only the gateway and Base A, if another base's engine is missing)";
		throw new Error(`GET /health/ready was not ready within 60 s${hint}; last answer: ${last}\n${tail(logFile)}`);
	}
	if (last.startsWith("503")) console.log(`  ready for Base A (the bases of services not started are down: ${last.slice(4, 200)})`);
	if (natsUrl) {
		state.observer = new ServiceBroker({ namespace, nodeID: `bench-observer-${randomBytes(3).toString("hex")}`, transporter: natsUrl as BrokerOptions["transporter"], serializer: "JSON", logger: false });
		await state.observer.start();
		await state.observer.waitForServices(SERVICES, Math.max(1000, until - Date.now()), 200);
		await state.observer.stop();
		state.observer = undefined;
	}
}

// ------------------------------------------------------------------ seeding

const FIRST = ["Maria", "José", "Ana", "João", "Antônio", "Francisca", "Carlos", "Paulo", "Adriana", "Lucas", "Juliana", "Márcia", "Fernanda", "Rafael", "Gabriela", "Luís"];
const LAST = ["Silva", "Santos", "Oliveira", "Souza", "Rodrigues", "Ferreira", "Alves", "Pereira", "Lima", "Gomes", "Costa", "Ribeiro", "Martins", "Carvalho", "D'Ávila"];
const STREETS = ["Rua das Flores", "Avenida Paulista", "Rua Augusta", "Travessa São Bento", "Rua XV de Novembro"];
const CITIES = ["São Paulo - SP", "Recife - PE", "Curitiba - PR", "Belo Horizonte - MG", "Porto Alegre - RS"];
const COMPANIES = ["Banco Alfa", "Loja Beta", "Telecom Gama", "Energia Delta", "Cartão Ômega", "Varejo 24h"];

const pick = <T>(xs: T[]): T => xs[randomInt(xs.length)];
const pad = (n: number) => String(n).padStart(2, "0");
const brDate = (year: number) => `${pad(randomInt(1, 29))}/${pad(randomInt(1, 13))}/${year}`;

async function seed(base: string, adminKey: string, cipher: PiiCipher, existing: Set<string>): Promise<string[]> {
	const cpfs: string[] = [];
	let next = 0;
	let done = 0;
	const started = Date.now();
	const one = async (): Promise<void> => {
		for (;;) {
			const cpf = randomCpf();
			if (existing.has(cpf)) continue;
			existing.add(cpf);
			const nome = `${pick(FIRST)} ${pick(LAST)} ${pick(LAST)}`;
			const endereco = `${pick(STREETS)}, ${randomInt(1, 3000)}, ${pick(CITIES)}`;
			const created = await call(base, "POST", "/api/v1/persons", adminKey, { cpf, nome, endereco });
			if (created.status === 409) continue; // left by an earlier --keep-data run: draw another
			expect(created, 201, "POST /api/v1/persons");
			state.seeded.push(cipher.blindIndex(cpf));
			for (let d = 0; d < 3; d++) {
				const debt: Record<string, unknown> = { valor: randomInt(100, 5_000_000) / 100, empresa: pick(COMPANIES), dataVencimento: brDate(2020 + randomInt(6)) };
				if (d === 0) debt.datePagamento = brDate(2025);
				expect(await call(base, "POST", `/api/v1/persons/${cpf}/dividas`, adminKey, debt), 201, "POST /api/v1/persons/:cpf/dividas");
			}
			cpfs.push(cpf);
			return;
		}
	};
	await Promise.all(Array.from({ length: opts.seedParallelism }, async () => {
		while (next < opts.persons) {
			next++;
			await one();
			if (++done % 500 === 0) process.stdout.write(`  ${done}/${opts.persons} persons (${((Date.now() - started) / 1000).toFixed(0)} s)\n`);
		}
	}));
	return cpfs;
}

function shuffled<T>(xs: T[]): T[] {
	const out = [...xs];
	for (let i = out.length - 1; i > 0; i--) {
		const j = randomInt(i + 1);
		[out[i], out[j]] = [out[j], out[i]];
	}
	return out;
}

// ------------------------------------------------------------------ the two sides

interface SideResult {
	reqPerSec: number;
	p50: number;
	p99: number;
	mean: number;
	ok: number;
	errors: number;
	seconds: number;
	cpu: CpuReport;
	/** Where the database's client sessions were, on average, during the measurement. */
	db: WaitProfile;
	detail: Record<string, unknown>;
}

function gatewayRun(base: string, key: string, cpfs: string[], seconds: number, latencies?: number[]): AutocannonInstance {
	const paths = shuffled(cpfs).map(cpf => `/api/v1/persons/${cpf}`);
	let i = 0;
	const instance = autocannon({
		url: base,
		connections: opts.concurrency,
		duration: seconds,
		timeout: 10,
		headers: { authorization: `Bearer ${key}` },
		requests: [{
			method: "GET",
			setupRequest(req: { path: string }) {
				req.path = paths[i++ % paths.length];
				return req;
			}
		}]
	});
	if (latencies) {
		instance.on("response", (_client, status, _bytes, ms) => {
			if (status >= 200 && status < 300) latencies.push(ms);
		});
	}
	state.cannon = instance;
	return instance;
}

async function measureGateway(base: string, key: string, cpfs: string[], meshProcs: { pid: number; name: string }[], dbUrl: string): Promise<SideResult> {
	await gatewayRun(base, key, cpfs, WARMUP_SECONDS);
	const latencies: number[] = [];
	const sampler = await waitSampler(dbUrl);
	const meter = cpuMeter(meshProcs);
	const r = await gatewayRun(base, key, cpfs, opts.duration, latencies);
	const cpu = meter();
	const db = await sampler();
	state.cannon = undefined;
	const sorted = sortedCopy(latencies);
	return {
		reqPerSec: r.requests.average,
		p50: percentile(sorted, 50),
		p99: percentile(sorted, 99),
		mean: latencies.reduce((a, b) => a + b, 0) / (latencies.length || 1),
		ok: latencies.length,
		errors: r.non2xx + r.errors,
		seconds: r.duration,
		cpu,
		db,
		detail: {
			autocannon: {
				requestsPerSecMean: r.requests.average, requestsTotal: r.requests.total,
				latencyP50Ms: r.latency.p50, latencyP99Ms: r.latency.p99, latencyMeanMs: r.latency.average,
				non2xx: r.non2xx, errors: r.errors, timeouts: r.timeouts, statusCodes: r.statusCodeStats
			}
		}
	};
}

/** One lookup as cpf-lookup.get does it (blind index, query, decryption, mapping) plus its audit row. */
async function rawLookup(pool: pg.Pool, cipher: PiiCipher, cpf: string, consumer: string) {
	const bidx = cipher.blindIndex(cpf);
	const { rows } = await pool.query(LOOKUP_SQL, [bidx]);
	if (rows.length === 0) throw new Error("person not found");
	const identity: Record<string, string> = {};
	for (const field of ["cpf", "nome", "endereco"]) identity[field] = cipher.decrypt(rows[0][`${field}_enc`], `persons.${field}:${bidx}`);
	const person = { ...identity, dividas: rows.filter(r => r.id).map(debtView) };
	await pool.query(AUDIT_SQL, [consumer, "persons.read", bidx, randomUUID(), "ok"]);
	return person;
}

async function closedLoop(seconds: number, op: (i: number) => Promise<unknown>, latencies?: number[]) {
	let next = 0;
	let errors = 0;
	const firstErrors: string[] = [];
	const t0 = process.hrtime.bigint();
	const end = t0 + BigInt(Math.round(seconds * 1e9));
	await Promise.all(Array.from({ length: opts.concurrency }, async () => {
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

async function measureRaw(pool: pg.Pool, cipher: PiiCipher, cpfs: string[], consumer: string, dbUrl: string): Promise<SideResult> {
	const order = shuffled(cpfs);
	const op = (i: number) => rawLookup(pool, cipher, order[i % order.length], consumer);
	await closedLoop(WARMUP_SECONDS, op);
	const latencies: number[] = [];
	const sampler = await waitSampler(dbUrl);
	const meter = cpuMeter([]);
	const r = await closedLoop(opts.duration, op, latencies);
	const cpu = meter();
	const db = await sampler();
	const sorted = sortedCopy(latencies);
	return {
		reqPerSec: latencies.length / r.seconds,
		p50: percentile(sorted, 50),
		p99: percentile(sorted, 99),
		mean: latencies.reduce((a, b) => a + b, 0) / (latencies.length || 1),
		ok: latencies.length,
		errors: r.errors,
		seconds: r.seconds,
		cpu,
		db,
		detail: { firstErrors: r.firstErrors }
	};
}

// ------------------------------------------------------------------ report

function fmt(n: number, digits = 2): string {
	return Number.isFinite(n) ? n.toFixed(digits) : "n/a";
}

function table(rows: string[][]): string {
	const widths = rows[0].map((_, c) => Math.max(...rows.map(r => r[c].length)));
	const line = (r: string[]) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join(" | ");
	return [line(rows[0]), widths.map(w => "-".repeat(w)).join("-|-"), ...rows.slice(1).map(line)].join("\n");
}

const cpuText = (c: CpuReport) => {
	const others = Object.entries(c.others).map(([name, pct]) => `${name} ${pct}%`).join(", ");
	const perProcess = Object.entries(c.meshProcesses).filter(([, pct]) => pct > 0).map(([name, pct]) => `${name} ${pct}%`).join(", ");
	return `mesh ${c.mesh ?? "-"}%${perProcess ? ` (${perProcess})` : ""}, this process ${c.loadGenerator ?? "-"}%, postgres ${c.postgres ?? "-"}%, nats ${c.nats ?? "-"}%` +
		(others ? `, others: ${others}` : "") +
		`; everything else (other processes, kernel threads) ${c.foreign ?? "-"}% (100% = one core); machine busy ${c.machineBusy ?? "-"}% of ${os.cpus().length} cores (softirq ${c.softirq ?? "-"}%, steal ${c.steal ?? "-"}%)`;
};

const dbText = (w: WaitProfile) =>
	Object.entries(w.sessions).filter(([, n]) => n >= 0.1).map(([what, n]) => `${what} ${n}`).join(", ") || "none";

// ------------------------------------------------------------------ main

async function main(): Promise<void> {
	const cpus = os.cpus();
	const machine = { cpus: cpus.length, cpuModel: cpus[0]?.model ?? "unknown", memGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, platform: `${os.platform()} ${os.release()}` };
	console.log(`persons-lookup benchmark: ${opts.persons} persons × 3 debts, concurrency ${opts.concurrency}, ${opts.duration} s per side (+${WARMUP_SECONDS} s warm-up), mesh: ${opts.baseAOnly ? SERVICES.join(", ") : "every service in dist/services"}, ${opts.split ? "one process per service" : "in one process"}`);
	console.log(`machine: ${machine.cpus} × ${machine.cpuModel}, ${machine.memGiB} GiB, node ${machine.node}`);
	checkSqlInSync();

	// Engines, dev settings, build, schema.
	run("bash", ["scripts/engines.sh", "up"], { cwd: ROOT, timeoutMs: 180_000 });
	const devEnv = enginesEnv(ROOT, "dev");
	const env: NodeJS.ProcessEnv = { ...process.env, ...devEnv };
	delete env.NODE_ID;
	console.log("building…");
	run("npm", ["run", "--silent", "build"], { cwd: ROOT, env, timeoutMs: 300_000 });
	run(process.execPath, ["dist/scripts/migrate.js"], { cwd: ROOT, env, timeoutMs: 120_000 });

	// The same settings the services read (config/index.ts), from the same environment.
	const cfg = loadConfig(env);
	const cipher = new PiiCipher(need(cfg, "piiKeys"), need(cfg, "blindIndexKey"));
	const adminKey = need(cfg, "adminApiKey");

	// The mesh, as a child process (or one per service with --split).
	const port = await freePort();
	const namespace = `bench-${randomBytes(4).toString("hex")}`;
	const logFile = path.join(os.tmpdir(), `credit-mesh-${namespace}.log`);
	const meshEnv: NodeJS.ProcessEnv = { ...env, PORT: String(port), HOST: "127.0.0.1", LOG_LEVEL: "warn", NAMESPACE: namespace, NODE_ENV: "development" };
	if (opts.split && !cfg.transporter) throw new Error("--split needs a transporter (TRANSPORTER or TRANSPORTER_FILE)");
	console.log(`starting the mesh: namespace ${namespace}, port ${port}, log ${logFile}`);
	const base = `http://127.0.0.1:${port}`;
	const meshProcs = startMesh(meshEnv, logFile);
	await waitReady(base, cfg.transporter, namespace, logFile);

	// The raw side's pool: the application's role, like the services; within the server's connection limit
	// (the mesh's pools are closed by then, but other work may hold connections).
	const probe = new pg.Client({ connectionString: need(cfg, "postgresUrl"), connectionTimeoutMillis: 2000 });
	await probe.connect();
	const maxConnections = Number((await probe.query("SHOW max_connections")).rows[0].max_connections);
	await probe.end();
	if (opts.rawPool > maxConnections - 20) {
		console.warn(`--raw-pool ${opts.rawPool} is more than PostgreSQL allows (max_connections ${maxConnections}); using ${maxConnections - 20}`);
		opts.rawPool = maxConnections - 20;
	}
	const pool = (state.pool = new pg.Pool({
		connectionString: need(cfg, "postgresUrl"),
		max: opts.rawPool,
		connectionTimeoutMillis: 2000,
		statement_timeout: 10_000,
		// DATE as the 'YYYY-MM-DD' text Sequelize returns for DATEONLY, so debtView sees the same input.
		types: { getTypeParser: ((oid: number, format?: any) => (oid === pg.types.builtins.DATE ? (v: string) => v : pg.types.getTypeParser(oid, format))) as any }
	}));

	// Seed through the API.
	const consumer = expect(await call(base, "POST", "/api/v1/consumers", adminKey, { name: `bench ${namespace}`, scopes: ["persons:read"], rateLimit: 1_000_000 }), 201, "POST /api/v1/consumers");
	console.log(`seeding ${opts.persons} persons × 3 debts through the API (${opts.seedParallelism} in parallel)…`);
	const seedStart = Date.now();
	state.consumer = { base, id: consumer.id, adminKey };
	const cpfs = await seed(base, adminKey, cipher, new Set());
	const seedSeconds = (Date.now() - seedStart) / 1000;
	console.log(`  seeded in ${seedSeconds.toFixed(1)} s (${fmt((cpfs.length * 4) / seedSeconds, 0)} writes/s)`);

	// Both sides must produce the same answer for the same CPF.
	const sample = expect(await call(base, "GET", `/api/v1/persons/${cpfs[0]}`, consumer.key, undefined), 200, "GET /api/v1/persons/:cpf");
	const rawSample = await rawLookup(pool, cipher, cpfs[0], consumer.id);
	if (JSON.stringify(sample) !== JSON.stringify(rawSample) || sample.dividas?.length !== 3) {
		throw new Error(`the raw side does not reproduce the gateway's answer:\n gateway ${JSON.stringify(sample)}\n raw     ${JSON.stringify(rawSample)}`);
	}

	console.log(`\n[1/2] ${gatewayLabel(opts.split)}: ${WARMUP_SECONDS} s warm-up, then ${opts.duration} s…`);
	const gateway = await measureGateway(base, consumer.key, cpfs, meshProcs, need(cfg, "postgresUrl"));
	console.log(`  cpu: ${cpuText(gateway.cpu)}`);
	console.log(`  db sessions (average): ${dbText(gateway.db)}`);

	// Tidy the mesh side up, then stop it so it does not compete with the raw run.
	await revokeConsumer();
	state.meshStopping = true;
	await Promise.all(state.children.map(c => stopChild(c)));
	const meshLog = tail(logFile, 100000).split("\n").filter(Boolean);
	const meshWarnings = meshLog.filter(l => /"level":"(warn|error|fatal)"|\b(WARN|ERROR|FATAL)\b/.test(l));

	console.log(`\n[2/2] ${RAW_LABEL}: pool of ${opts.rawPool}, ${WARMUP_SECONDS} s warm-up, then ${opts.duration} s…`);
	const raw = await measureRaw(pool, cipher, cpfs, consumer.id, need(cfg, "postgresUrl"));
	console.log(`  cpu: ${cpuText(raw.cpu)}`);
	console.log(`  db sessions (average): ${dbText(raw.db)}`);

	console.log("");
	await removeSeeded();

	const ratio = { reqPerSec: gateway.reqPerSec / raw.reqPerSec, p50: gateway.p50 / raw.p50, p99: gateway.p99 / raw.p99 };
	console.log(`\nmachine: ${machine.cpus} CPUs (${machine.cpuModel}), node ${machine.node}; N = ${cpfs.length} persons × 3 debts; concurrency ${opts.concurrency}; duration ${opts.duration} s per side after ${WARMUP_SECONDS} s warm-up\n`);
	console.log(table([
		["path", "req/s", "p50 ms", "p99 ms", "errors"],
		[gatewayLabel(opts.split), fmt(gateway.reqPerSec, 0), fmt(gateway.p50), fmt(gateway.p99), String(gateway.errors)],
		[RAW_LABEL, fmt(raw.reqPerSec, 0), fmt(raw.p50), fmt(raw.p99), String(raw.errors)]
	]));
	console.log(`\nratio ours/raw: req/s ${fmt(ratio.reqPerSec, 3)} (${fmt(ratio.reqPerSec * 100, 1)} %), p50 latency ${fmt(ratio.p50)}×, p99 latency ${fmt(ratio.p99)}×`);
	if (!opts.split) console.log("\nnote: with the mesh in one process, moleculer's preferLocal routes the calls in-process, so no request crosses NATS (see the nats CPU above); --split runs one process per service.");
	if (opts.rawPool !== opts.concurrency) console.log(`note: the raw pool had ${opts.rawPool} connections (--raw-pool), not ${opts.concurrency}.`);
	const noisy = ([["gateway", gateway.cpu], ["raw", raw.cpu]] as const).filter(([, c]) => (c.foreign ?? 0) > 50).map(([name, c]) => `${name} run ${c.foreign}%`);
	if (noisy.length) console.log(`WARNING: something else used CPU during the measurement (${noisy.join(", ")} of a core beyond the mesh, PostgreSQL, NATS and this process): the figures understate both sides and the ratio is unreliable; rerun on a quiet machine.`);
	if (meshWarnings.length) console.log(`\nthe mesh logged ${meshWarnings.length} warning/error line(s); first: ${meshWarnings[0].slice(0, 300)}`);

	mkdirSync(RESULTS_DIR, { recursive: true });
	const out = path.join(RESULTS_DIR, "persons-lookup.json");
	writeFileSync(out, JSON.stringify({
		benchmark: "persons-lookup",
		at: new Date().toISOString(),
		machine,
		params: { persons: cpfs.length, debtsPerPerson: 3, concurrency: opts.concurrency, rawPool: opts.rawPool, durationSeconds: opts.duration, warmupSeconds: WARMUP_SECONDS, meshProcesses: state.children.length, seedSeconds },
		results: [{ path: gatewayLabel(opts.split), ...gateway }, { path: RAW_LABEL, ...raw }],
		ratio,
		meshWarnings: meshWarnings.slice(0, 20)
	}, null, 2) + "\n");
	console.log(`results: ${path.relative(ROOT, out)}`);
	rmSync(logFile, { force: true }); // kept only when the run fails
}

// Whatever happens, nothing outlives the benchmark for long.
const budgetMs = 900_000 + opts.persons * 100 + 2 * (opts.duration + WARMUP_SECONDS) * 1000;
const watchdog = setTimeout(() => {
	console.error(`benchmark overran its ${Math.round(budgetMs / 1000)} s budget; stopping`);
	void cleanup().finally(() => process.exit(1));
}, budgetMs);
watchdog.unref();

main()
	.then(() => cleanup())
	.then(() => process.exit(0))
	.catch(async err => {
		console.error(`benchmark failed: ${err instanceof Error ? err.message : String(err)}`);
		await cleanup();
		process.exit(1);
	});
