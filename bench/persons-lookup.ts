// `npm run bench [-- --persons N --concurrency C --duration S --raw-pool P --split | --one-process --base-a --keep-data]`
//
// GET /api/v1/persons/:cpf through the whole mesh (HTTP → gateway → cpf-lookup → audit), against
// raw `pg` doing the same database work (the lookup query and the audit insert) at the same
// concurrency, in one run. See bench/README.md.
import { randomInt, randomUUID } from "node:crypto";
import { rmSync } from "node:fs";
import path from "node:path";
import pg from "pg";
import { need } from "../config";
import { randomCpf } from "../lib/cpf";
import { PiiCipher } from "../lib/pii";
import { debtView } from "../lib/base-a/debts";
import { LOOKUP_SQL } from "../lib/base-a/lookup";
import { parseFlags } from "../scripts/args";
import { call, createConsumer, expect } from "./lib/http";
import { CITIES, inParallel, pick, shuffled, STREETS } from "./lib/data";
import { rawAudit, capPoolSize, prepare } from "./lib/engines";
import { runMain, stopEverything } from "./lib/lifecycle";
import type { BenchState } from "./lib/state";
import { measureGatewayThenRaw } from "./lib/measure";
import { launchMesh, type MeshShape, SHAPE_FLAGS, SHAPE_LABELS, shapeOf } from "./lib/mesh";
import { fmt, gitState, gitText, machineInfo, printComparison, writeResults } from "./lib/report";

// ------------------------------------------------------------------ the database work, as the services do it

// The lookup query is cpf-lookup's own (lib/base-a/lookup.ts); rawAudit (bench/lib/engines.ts) appends with the
// audit service's own writer.

const ROOT = path.resolve(__dirname, "..");
const WARMUP_SECONDS = 3;

const RAW_LABEL = "raw pg (select + audit insert)";
/** What our side crosses: in the stack the gateway's call crosses NATS to base-a, whose services call each other in-process; with --split every call crosses NATS; in one process none. */
const GATEWAY_LABELS: Record<MeshShape, string> = {
	stack: "HTTP → gateway → NATS → cpf-lookup → audit (base-a group)",
	split: "HTTP → gateway → NATS → cpf-lookup → NATS → audit",
	"one-process": "HTTP → gateway → cpf-lookup → audit (one process)"
};
/** The gateway and Base A: everything GET /persons/:cpf and the seeding touch. */
const SERVICES = ["api", "persons", "cpf-lookup", "debt-write", "audit", "consumers", "idempotency", "events-relay"];

const flags = parseFlags(process.argv.slice(2), {
	persons: { type: "number", default: 2000 },
	concurrency: { type: "number", default: 32 },
	duration: { type: "number", default: 15 },
	seedParallelism: { type: "number", default: 8 },
	/** Connections of the raw side's pool; by default as many as the concurrency. */
	rawPool: { type: "number" },
	...SHAPE_FLAGS,
	/** Only the gateway and Base A (when the other bases' engines are not available), not all of dist/services. */
	baseAOnly: { type: "boolean", flag: "base-a" },
	/** Leave the seeded persons in the dev database (they are deleted by default). */
	keepData: { type: "boolean" }
});
const opts = { ...flags, rawPool: flags.rawPool ?? flags.concurrency, shape: shapeOf(flags) };
const gatewayLabel = GATEWAY_LABELS[opts.shape];

// ------------------------------------------------------------------ state that cleanup() undoes

const state: BenchState & {
	pool?: pg.Pool;
	/** Blind indexes of the persons seeded so far, deleted at the end unless --keep-data. */
	seeded: string[];
	cleaning?: Promise<void>;
} = { children: [], seeded: [] };

/** Deletes the seeded persons; their debts go with them (ON DELETE CASCADE). Audit rows stay: the log is insert-only. */
async function removeSeeded(): Promise<void> {
	if (opts.keepData || !state.pool || state.seeded.length === 0) return;
	const bidxs = state.seeded.splice(0);
	const { rowCount } = await state.pool.query("DELETE FROM persons WHERE cpf_bidx = ANY($1::char(64)[])", [bidxs]);
	console.log(`removed the ${rowCount} seeded persons and their debts (--keep-data keeps them)`);
}

async function cleanup(): Promise<void> {
	state.cleaning ??= (async () => {
		await stopEverything(state);
		await removeSeeded().catch(err => console.error(`could not remove the seeded persons: ${err.message}`));
		await state.pool?.end().catch(() => undefined);
	})();
	return state.cleaning;
}

// ------------------------------------------------------------------ seeding

const FIRST = ["Maria", "José", "Ana", "João", "Antônio", "Francisca", "Carlos", "Paulo", "Adriana", "Lucas", "Juliana", "Márcia", "Fernanda", "Rafael", "Gabriela", "Luís"];
const LAST = ["Silva", "Santos", "Oliveira", "Souza", "Rodrigues", "Ferreira", "Alves", "Pereira", "Lima", "Gomes", "Costa", "Ribeiro", "Martins", "Carvalho", "D'Ávila"];
const COMPANIES = ["Banco Alfa", "Loja Beta", "Telecom Gama", "Energia Delta", "Cartão Ômega", "Varejo 24h"];

const pad = (n: number) => String(n).padStart(2, "0");
const brDate = (year: number) => `${pad(randomInt(1, 29))}/${pad(randomInt(1, 13))}/${year}`;

async function seed(base: string, adminKey: string, cipher: PiiCipher, existing: Set<string>): Promise<string[]> {
	const cpfs: string[] = [];
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
	await inParallel(opts.persons, opts.seedParallelism, "persons", one);
	return cpfs;
}

// ------------------------------------------------------------------ the two sides

/** One lookup as cpf-lookup.get does it (blind index, query, decryption, mapping) plus its audit row. */
async function rawLookup(pool: pg.Pool, cipher: PiiCipher, cpf: string, consumer: string) {
	const bidx = cipher.blindIndex(cpf);
	const { rows } = await pool.query(LOOKUP_SQL, [bidx]);
	if (rows.length === 0) throw new Error("person not found");
	const identity: Record<string, string> = {};
	for (const field of ["cpf", "nome", "endereco"]) identity[field] = cipher.decrypt(rows[0][`${field}_enc`], `persons.${field}:${bidx}`);
	const person = { ...identity, dividas: rows.filter(r => r.id).map(debtView) };
	await rawAudit(pool, consumer, "cpf-lookup.get", bidx, randomUUID(), "ok");
	return person;
}

// ------------------------------------------------------------------ main

async function main(): Promise<void> {
	const machine = machineInfo();
	console.log(`persons-lookup benchmark: ${opts.persons} persons × 3 debts, concurrency ${opts.concurrency}, ${opts.duration} s per side (+${WARMUP_SECONDS} s warm-up), mesh: ${opts.baseAOnly ? SERVICES.join(", ") : "every service"}, ${SHAPE_LABELS[opts.shape]}`);
	console.log(`machine: ${machine.cpus} × ${machine.cpuModel}, ${machine.memGiB} GiB, node ${machine.node}`);

	// Engines, dev settings, build, schema.
	const code = gitState(ROOT);
	const { env, cfg } = prepare(ROOT);
	const cipher = new PiiCipher(need(cfg, "piiKeys"), need(cfg, "blindIndexKey"));
	const adminKey = need(cfg, "adminApiKey");
	const dbUrl = need(cfg, "postgresUrl");

	// The mesh: one process per service group (or per service with --split, or one with --one-process).
	const mesh = await launchMesh(state, ROOT, env, cfg, {
		shape: opts.shape,
		services: opts.baseAOnly ? SERVICES : undefined,
		waitFor: SERVICES,
		// With --base-a the other bases are reported down (their services are not started).
		acceptPartial: opts.baseAOnly ? report => report?.bases?.A?.status === "up" && report.transporter !== "down" : undefined,
		hint: opts.baseAOnly ? " (--base-a starts only the gateway and Base A)" : " (--base-a starts only the gateway and Base A, if another base's engine is missing)"
	});
	if (mesh.lastReady.startsWith("503")) console.log(`  ready for Base A (the bases of services not started are down: ${mesh.lastReady.slice(4, 200)})`);
	const { base, namespace, logFile } = mesh;

	// The raw side's pool: the application's role, like the services; within the server's connection limit
	// (the mesh's pools are closed by then, but other work may hold connections).
	opts.rawPool = await capPoolSize(dbUrl, opts.rawPool);
	const pool = (state.pool = new pg.Pool({
		connectionString: dbUrl,
		max: opts.rawPool,
		connectionTimeoutMillis: 2000,
		statement_timeout: 10_000,
		// DATE as the 'YYYY-MM-DD' text Sequelize returns for DATEONLY, so debtView sees the same input.
		types: { getTypeParser: ((oid: number, format?: any) => (oid === pg.types.builtins.DATE ? (v: string) => v : pg.types.getTypeParser(oid, format))) as any }
	}));

	// Seed through the API.
	const consumer = await createConsumer(state, base, adminKey, `bench ${namespace}`, ["persons:read"]);
	console.log(`seeding ${opts.persons} persons × 3 debts through the API (${opts.seedParallelism} in parallel)…`);
	const seedStart = Date.now();
	const cpfs = await seed(base, adminKey, cipher, new Set());
	const seedSeconds = (Date.now() - seedStart) / 1000;
	console.log(`  seeded in ${seedSeconds.toFixed(1)} s (${fmt((cpfs.length * 4) / seedSeconds, 0)} writes/s)`);

	// Both sides must produce the same answer for the same CPF.
	const sample = expect(await call(base, "GET", `/api/v1/persons/${cpfs[0]}`, consumer.key, undefined), 200, "GET /api/v1/persons/:cpf");
	const rawSample = await rawLookup(pool, cipher, cpfs[0], consumer.id);
	if (JSON.stringify(sample) !== JSON.stringify(rawSample) || sample.dividas?.length !== 3) {
		throw new Error(`the raw side does not reproduce the gateway's answer:\n gateway ${JSON.stringify(sample)}\n raw     ${JSON.stringify(rawSample)}`);
	}

	const order = shuffled(cpfs);
	const { gateway, raw, warnings } = await measureGatewayThenRaw(state, {
		gatewayLabel, rawLabel: `${RAW_LABEL}, pool of ${opts.rawPool}`,
		base, key: consumer.key, paths: shuffled(cpfs).map(cpf => `/api/v1/persons/${cpf}`),
		rawOp: i => rawLookup(pool, cipher, order[i % order.length], consumer.id),
		concurrency: opts.concurrency, seconds: opts.duration, warmupSeconds: WARMUP_SECONDS,
		watch: meshProcs => ({ meshProcs, dataDir: env.CREDIT_MESH_DATA, sessions: { postgres: dbUrl } }), meshProcs: mesh.procs, logFile
	});

	console.log("");
	await removeSeeded();

	const ratio = printComparison({
		setup: `machine: ${machine.cpus} CPUs (${machine.cpuModel}), node ${machine.node}; N = ${cpfs.length} persons × 3 debts; concurrency ${opts.concurrency}; duration ${opts.duration} s per side after ${WARMUP_SECONDS} s warm-up`,
		gatewayLabel, rawLabel: RAW_LABEL, gateway, raw, warnings,
		notes: [
			opts.shape === "one-process" && "with the mesh in one process, moleculer's preferLocal routes the calls in-process, so no request crosses NATS (see the nats CPU above); the default runs one process per group, --split one per service.",
			opts.rawPool !== opts.concurrency && `the raw pool had ${opts.rawPool} connections (--raw-pool), not ${opts.concurrency}.`
		]
	});

	const out = await writeResults(ROOT, "persons-lookup", {
		benchmark: "persons-lookup",
		at: new Date().toISOString(),
		machine,
		code,
		params: { persons: cpfs.length, debtsPerPerson: 3, concurrency: opts.concurrency, rawPool: opts.rawPool, durationSeconds: opts.duration, warmupSeconds: WARMUP_SECONDS, meshProcesses: state.children.length, seedSeconds },
		results: [{ path: gatewayLabel, ...gateway }, { path: RAW_LABEL, ...raw }],
		ratio,
		meshWarnings: warnings.slice(0, 20)
	});
	console.log(gitText(code));
	console.log(`results: ${out}`);
	rmSync(logFile, { force: true }); // kept only when the run fails
}

// Whatever happens, nothing outlives the benchmark for long.
runMain(state, { budgetMs: 900_000 + opts.persons * 100 + 2 * (opts.duration + WARMUP_SECONDS) * 1000, main, cleanup });
