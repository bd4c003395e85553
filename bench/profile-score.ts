// `npm run bench:score [-- --profiles N --concurrency C --duration S --raw-pool P --split | --one-process --keep-data]`
//
// GET /api/v1/profiles/:cpf/score through the whole mesh (HTTP → gateway → asset-score → audit),
// against the raw `mongodb` driver doing the same work (the projected findOne by blind index, the
// birth date's decryption, scoreProfile, and the audit insert every score read appends) at the same
// concurrency, in one run. See bench/README.md.
import { randomUUID } from "node:crypto";
import { rmSync } from "node:fs";
import path from "node:path";
import type { Collection } from "mongodb";
import pg from "pg";
import { need } from "../config";
import { randomCpf } from "../lib/cpf";
import { todayIso } from "../lib/dates";
import { PiiCipher } from "../lib/pii";
import type { ProfileDoc } from "../lib/base-b/profile";
import { scoreProfile } from "../lib/base-b/score";
import { parseFlags } from "../scripts/args";
import { deleteSeededProfiles, ferretStorageUrl, profilesCollection } from "./lib/base-b";
import { inParallel, randomProfile, shuffled } from "./lib/data";
import { rawAudit, capPoolSize, checkInSync, prepare } from "./lib/engines";
import { call, createConsumer, expect } from "./lib/http";
import { runMain, stopEverything } from "./lib/lifecycle";
import type { BenchState } from "./lib/state";
import { measureGatewayThenRaw } from "./lib/measure";
import { basesAandBUp, launchMesh, type MeshShape, SHAPE_FLAGS, SHAPE_LABELS, shapeOf } from "./lib/mesh";
import { fmt, gitState, gitText, machineInfo, printComparison, writeResults } from "./lib/report";

const ROOT = path.resolve(__dirname, "..");
const WARMUP_SECONDS = 3;

/** The read asset-score.get makes (services/asset-score.service.ts); checkInSync() warns if it changes. */
const PROJECTION = { dataNascimento_enc: 1, fonteDeRenda: 1, bens: 1 } as const;

const RAW_LABEL = "raw mongodb findOne + decrypt + score + audit insert";
/** What our side crosses in each shape (asset-score in base-b, audit in base-a). */
const GATEWAY_LABELS: Record<MeshShape, string> = {
	stack: "HTTP → gateway → NATS → asset-score → NATS → audit",
	split: "HTTP → gateway → NATS → asset-score → NATS → audit (one process per service)",
	"one-process": "HTTP → gateway → asset-score → audit (one process)"
};
/** Everything the seeding (PUT /profiles, which announces its event to events-relay) and the load (GET /profiles/:cpf/score) touch. */
const SERVICES = ["api", "consumers", "audit", "idempotency", "events-relay", "profiles", "asset-score"];

const flags = parseFlags(process.argv.slice(2), {
	profiles: { type: "number", default: 2000 },
	concurrency: { type: "number", default: 32 },
	duration: { type: "number", default: 15 },
	seedParallelism: { type: "number", default: 8 },
	/** Connections of the raw side's pools (MongoDB and PostgreSQL); by default as many as the concurrency. */
	rawPool: { type: "number" },
	...SHAPE_FLAGS,
	/** Leave the seeded profiles in the dev database (they are deleted by default). */
	keepData: { type: "boolean" }
});
const opts = { ...flags, rawPool: flags.rawPool ?? flags.concurrency };
const shape = shapeOf(flags);

// ------------------------------------------------------------------ state that cleanup() undoes

const state: BenchState & {
	mongo?: Awaited<ReturnType<typeof profilesCollection>>;
	pool?: pg.Pool;
	/** `_id`s (blind indexes) of the profiles seeded so far, deleted at the end unless --keep-data. */
	seeded: string[];
	cleaning?: Promise<void>;
} = { children: [], seeded: [] };

async function removeSeeded(): Promise<void> {
	if (opts.keepData || !state.mongo || state.seeded.length === 0) return;
	await deleteSeededProfiles(state.mongo.profiles, state.seeded.splice(0));
}

async function cleanup(): Promise<void> {
	state.cleaning ??= (async () => {
		await stopEverything(state);
		await removeSeeded().catch(err => console.error(`could not remove the seeded profiles: ${err.message}`));
		await state.mongo?.client.close().catch(() => undefined);
		await state.pool?.end().catch(() => undefined);
	})();
	return state.cleaning;
}

// ------------------------------------------------------------------ seeding, through the API

async function seed(base: string, adminKey: string, cipher: PiiCipher, profiles: Collection): Promise<string[]> {
	const cpfs: string[] = [];
	const drawn = new Set<string>();
	const one = async (): Promise<void> => {
		for (;;) {
			const cpf = randomCpf();
			if (drawn.has(cpf)) continue;
			drawn.add(cpf);
			const bidx = cipher.blindIndex(cpf);
			// PUT is an upsert: never overwrite (and later delete) a profile this run did not create.
			if (await profiles.findOne({ _id: bidx }, { projection: { _id: 1 } })) continue;
			state.seeded.push(bidx);
			expect(await call(base, "PUT", `/api/v1/profiles/${cpf}`, adminKey, randomProfile(cpf)), 201, "PUT /api/v1/profiles/:cpf");
			cpfs.push(cpf);
			return;
		}
	};
	await inParallel(opts.profiles, opts.seedParallelism, "profiles", one);
	return cpfs;
}

// ------------------------------------------------------------------ the raw side

/**
 * One score as asset-score.get computes it: blind index, the projected findOne by `_id`, the birth
 * date opened with the same AAD (`profiles.dataNascimento:<bidx>`), scoreProfile, then the audit row
 * (`asset-score.get`, outcome `ok`) the service appends through audit.append before it answers.
 */
async function rawScore(profiles: Collection, pool: pg.Pool, cipher: PiiCipher, cpf: string, consumer: string) {
	const bidx = cipher.blindIndex(cpf);
	const doc = (await profiles.findOne({ _id: bidx }, { projection: PROJECTION })) as ProfileDoc | null;
	if (!doc) throw new Error("profile not found");
	const dataNascimento = cipher.decrypt(doc.dataNascimento_enc, `profiles.dataNascimento:${bidx}`);
	const result = scoreProfile({ dataNascimento, fonteDeRenda: doc.fonteDeRenda, bens: doc.bens }, todayIso());
	await rawAudit(pool, consumer, "asset-score.get", bidx, randomUUID(), "ok");
	return { cpf, ...result };
}

// ------------------------------------------------------------------ main

async function main(): Promise<void> {
	const machine = machineInfo();
	console.log(`profile-score benchmark: ${opts.profiles} profiles, concurrency ${opts.concurrency}, ${opts.duration} s per side (+${WARMUP_SECONDS} s warm-up), mesh: ${SHAPE_LABELS[shape]}`);
	console.log(`machine: ${machine.cpus} × ${machine.cpuModel}, ${machine.memGiB} GiB, node ${machine.node}`);
	checkInSync(ROOT, [
		["services/asset-score.service.ts", "findOne( { _id: bidx }, { projection: { dataNascimento_enc: 1, fonteDeRenda: 1, bens: 1 } } )"],
		["services/asset-score.service.ts", `scopes: ["score:read"], audit: true,`]
	]);

	const code = gitState(ROOT);
	const { env, cfg } = prepare(ROOT);
	const cipher = new PiiCipher(need(cfg, "piiKeys"), need(cfg, "blindIndexKey"));
	const adminKey = need(cfg, "adminApiKey");
	const dbUrl = need(cfg, "postgresUrl");
	const mongoUrl = need(cfg, "mongoUrl");

	const mesh = await launchMesh(state, ROOT, env, cfg, { shape, services: SERVICES, waitFor: SERVICES, acceptPartial: basesAandBUp });
	const { base, namespace, logFile } = mesh;

	// The raw side's clients: the driver and options the services use (pool of P), the application's
	// PostgreSQL role for the audit insert (pool of P).
	opts.rawPool = await capPoolSize(dbUrl, opts.rawPool);
	state.mongo = await profilesCollection(mongoUrl, opts.rawPool);
	const { profiles } = state.mongo;
	const pool = (state.pool = new pg.Pool({ connectionString: dbUrl, max: opts.rawPool, connectionTimeoutMillis: 2000, statement_timeout: 10_000 }));

	const consumer = await createConsumer(state, base, adminKey, `bench ${namespace}`, ["score:read"]);
	console.log(`seeding ${opts.profiles} profiles through the API (PUT /api/v1/profiles/:cpf, ${opts.seedParallelism} in parallel)…`);
	const seedStart = Date.now();
	const cpfs = await seed(base, adminKey, cipher, profiles);
	const seedSeconds = (Date.now() - seedStart) / 1000;
	console.log(`  seeded in ${seedSeconds.toFixed(1)} s (${fmt(cpfs.length / seedSeconds, 0)} profiles/s)`);

	// Both sides must produce the same answer for the same CPF (one with assets, if there is one).
	const sampleCpf = (await Promise.all(cpfs.slice(0, 20).map(async cpf => ({ cpf, doc: await profiles.findOne({ _id: cipher.blindIndex(cpf) }) }))))
		.find(x => (x.doc?.bens?.length ?? 0) > 0)?.cpf ?? cpfs[0];
	const sample = expect(await call(base, "GET", `/api/v1/profiles/${sampleCpf}/score`, consumer.key), 200, "GET /api/v1/profiles/:cpf/score");
	const rawSample = await rawScore(profiles, pool, cipher, sampleCpf, consumer.id);
	if (JSON.stringify(sample) !== JSON.stringify(rawSample)) {
		throw new Error(`the raw side does not reproduce the gateway's answer:\n gateway ${JSON.stringify(sample)}\n raw     ${JSON.stringify(rawSample)}`);
	}

	const sessions: Record<string, string> = { "audit (credit)": dbUrl, "ferretdb storage (credit_ferret)": ferretStorageUrl(mongoUrl, dbUrl) };
	const order = shuffled(cpfs);
	const { gateway, raw, warnings } = await measureGatewayThenRaw(state, {
		gatewayLabel: GATEWAY_LABELS[shape], rawLabel: `${RAW_LABEL}, pools of ${opts.rawPool}`,
		base, key: consumer.key, paths: shuffled(cpfs).map(cpf => `/api/v1/profiles/${cpf}/score`),
		rawOp: i => rawScore(profiles, pool, cipher, order[i % order.length], consumer.id),
		concurrency: opts.concurrency, seconds: opts.duration, warmupSeconds: WARMUP_SECONDS,
		watch: meshProcs => ({ meshProcs, dataDir: env.CREDIT_MESH_DATA, sessions }), meshProcs: mesh.procs, logFile
	});

	console.log("");
	await removeSeeded();

	const ratio = printComparison({
		setup: `machine: ${machine.cpus} CPUs (${machine.cpuModel}), node ${machine.node}; N = ${cpfs.length} profiles; concurrency ${opts.concurrency}; duration ${opts.duration} s per side after ${WARMUP_SECONDS} s warm-up`,
		gatewayLabel: GATEWAY_LABELS[shape], rawLabel: RAW_LABEL, gateway, raw, warnings,
		notes: [
			"the raw side appends the same audit row per read (INSERT INTO audit_log … 'asset-score.get'), because asset-score.get audits every score read through audit.append: without it the two sides would not do the same work.",
			shape === "one-process" && "with the mesh in one process, moleculer's preferLocal routes the calls in-process, so no request crosses NATS; the default runs one process per group, --split one per service.",
			opts.rawPool !== opts.concurrency && `the raw pools had ${opts.rawPool} connections (--raw-pool), not ${opts.concurrency}.`
		]
	});

	const out = await writeResults(ROOT, "profile-score", {
		benchmark: "profile-score",
		at: new Date().toISOString(),
		machine,
		code,
		params: { profiles: cpfs.length, concurrency: opts.concurrency, rawPool: opts.rawPool, durationSeconds: opts.duration, warmupSeconds: WARMUP_SECONDS, meshProcesses: state.children.length, seedSeconds },
		results: [{ path: GATEWAY_LABELS[shape], ...gateway }, { path: RAW_LABEL, ...raw }],
		ratio,
		meshWarnings: warnings.slice(0, 20)
	});
	console.log(gitText(code));
	console.log(`results: ${out}`);
	rmSync(logFile, { force: true }); // kept only when the run fails
}

// Whatever happens, nothing outlives the benchmark for long.
runMain(state, { budgetMs: 900_000 + opts.profiles * 100 + 2 * (opts.duration + WARMUP_SECONDS) * 1000, main, cleanup });
