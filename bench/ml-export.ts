// `npm run bench:export [-- --profiles M --runs R --batch B --keep-data]`
//
// GET /api/v1/ml/features streamed through the gateway (HTTP → gateway → ml-export, NDJSON), against
// the raw `mongodb` driver reading the same collection with the same cursor and computing the same
// rows, and against the bare cursor (the engine's ceiling), in one run; plus the mesh process's
// memory before and after the exports. See bench/README.md.
import { createHash, randomUUID } from "node:crypto";
import { rmSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Collection } from "mongodb";
import pg from "pg";
import { need } from "../config";
import { randomCpf } from "../lib/cpf";
import { parseDate, todayIso } from "../lib/dates";
import { PiiCipher, pseudonymizer } from "../lib/pii";
import { featureRow } from "../lib/base-b/features";
import { creditScoreColumns, SCORE_LATEST, type ScoreDoc } from "../lib/base-b/score-history";
import type { ProfileDoc } from "../lib/base-b/profile";
import { parseFlags } from "../scripts/args";
import { deleteSeededProfiles, ferretStorageUrl, profilesCollection } from "./lib/base-b";
import { memoryOf } from "./lib/cpu";
import { randomProfile } from "./lib/data";
import { rawAudit, checkInSync, prepare } from "./lib/engines";
import { createConsumer, revokeConsumer } from "./lib/http";
import { runMain, stopEverything } from "./lib/lifecycle";
import type { BenchState } from "./lib/state";
import { type Watch, observe } from "./lib/measure";
import type { Observation } from "./lib/report";
import { basesAandBUp, launchMesh, meshWarnings, SHAPE_FLAGS, SHAPE_LABELS, shapeOf, stopMesh } from "./lib/mesh";
import { fmt, gitState, gitText, machineInfo, noiseWarning, printMeshWarnings, printObservation, table, writeResults } from "./lib/report";
import { percentile, sortedCopy } from "./lib/stats";

const ROOT = path.resolve(__dirname, "..");

/** The cursor ml-export.features opens (services/ml-export.service.ts; the gateway reads it a page at a time); checkInSync() warns if it changes. */
const PROJECTION = { dataNascimento_enc: 1, fonteDeRenda: 1, bens: 1 } as const;
const BATCH_SIZE = 500;

const OURS_LABEL = "HTTP → gateway ⇄ ml-export pages (NDJSON stream)";
const RAW_LABEL = "raw cursor + decrypt + featureRow + JSON";
const BARE_LABEL = "raw cursor only (engine ceiling)";
/** Everything the export touches. */
const SERVICES = ["api", "consumers", "audit", "idempotency", "profiles", "ml-export"];

const opts = parseFlags(process.argv.slice(2), {
	...SHAPE_FLAGS,
	profiles: { type: "number", default: 20000 },
	/** Measured exports per side, after one warm-up export each. */
	runs: { type: "number", default: 5 },
	/** Documents per insertMany while seeding. */
	batch: { type: "number", default: 1000 },
	/** Leave the seeded profiles in the dev database (they are deleted by default). */
	keepData: { type: "boolean" }
});

// ------------------------------------------------------------------ state that cleanup() undoes

const state: BenchState & {
	mongo?: Awaited<ReturnType<typeof profilesCollection>>;
	pool?: pg.Pool;
	request?: http.ClientRequest;
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
		state.request?.destroy();
		await stopEverything(state);
		await removeSeeded().catch(err => console.error(`could not remove the seeded profiles: ${err.message}`));
		await state.mongo?.client.close().catch(() => undefined);
		await state.pool?.end().catch(() => undefined);
	})();
	return state.cleaning;
}

// ------------------------------------------------------------------ seeding, straight into the collection

/**
 * M profiles written with the driver in batches, each document exactly as profiles.put upserts it:
 * `_id` the blind index, `cpf`/`endereco`/`dataNascimento` sealed with PiiCipher under the AAD
 * `profiles.<field>:<blind index>` (what PiiMixin.sealFields does), the rest in the clear, ISO dates.
 * Direct rather than through the API: the export only reads, and this is ~50× faster than PUTs.
 */
async function seed(profiles: Collection, cipher: PiiCipher): Promise<number> {
	const today = todayIso();
	const started = Date.now();
	let inserted = 0;
	const drawn = new Set<string>();
	while (inserted < opts.profiles) {
		const docs: ProfileDoc[] = [];
		const now = new Date();
		while (docs.length < Math.min(opts.batch, opts.profiles - inserted)) {
			const cpf = randomCpf();
			if (drawn.has(cpf)) continue;
			drawn.add(cpf);
			const p = randomProfile(cpf, today);
			const bidx = cipher.blindIndex(cpf);
			const dataNascimento = parseDate(p.dataNascimento)!;
			const sealed = { cpf: p.cpf, endereco: p.endereco, dataNascimento };
			const doc: Record<string, unknown> = { _id: bidx };
			for (const [field, value] of Object.entries(sealed)) doc[`${field}_enc`] = cipher.encrypt(value, `profiles.${field}:${bidx}`);
			Object.assign(doc, { fonteDeRenda: p.fonteDeRenda, bens: p.bens.map(b => ({ tipo: b.tipo, inicioPosse: parseDate(b.inicioPosse)!, quitado: b.quitado })), updatedAt: now, createdAt: now });
			docs.push(doc as unknown as ProfileDoc);
		}
		const ids = docs.map(d => d._id);
		state.seeded.push(...ids);
		try {
			await profiles.insertMany(docs as any[], { ordered: false });
			inserted += docs.length;
		} catch (err: any) {
			// A duplicate _id is a profile this run did not create: neither count nor delete it.
			const duplicates = new Set<string>((err?.writeErrors ?? []).filter((e: any) => e.code === 11000).map((e: any) => ids[e.index]));
			if (duplicates.size === 0 || duplicates.size !== (err?.writeErrors ?? []).length) throw err;
			state.seeded = state.seeded.filter(id => !duplicates.has(id));
			inserted += docs.length - duplicates.size;
		}
		if (inserted % 5000 < opts.batch) process.stdout.write(`  ${inserted}/${opts.profiles} profiles (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
	}
	return inserted;
}

// ------------------------------------------------------------------ one export, each way

interface ExportRun { rows: number; bytes: number; seconds: number; firstByteMs: number | null; digest: string }

/**
 * GET /api/v1/ml/features, read as it arrives: lines and bytes counted, a SHA-256 of the stream kept
 * (to compare with the raw side), nothing stored.
 */
function oursExport(base: string, key: string): Promise<ExportRun> {
	return new Promise((resolve, reject) => {
		const t0 = process.hrtime.bigint();
		const ms = () => Number(process.hrtime.bigint() - t0) / 1e6;
		const req = (state.request = http.get(`${base}/api/v1/ml/features`, { headers: { authorization: `Bearer ${key}` }, agent: false, timeout: 120_000 }, res => {
			const hash = createHash("sha256");
			let rows = 0;
			let bytes = 0;
			let firstByteMs: number | null = null;
			let last = -1;
			if (res.statusCode !== 200 || !String(res.headers["content-type"]).startsWith("application/x-ndjson")) {
				let body = "";
				res.on("data", c => (body += c));
				res.on("end", () => reject(new Error(`GET /api/v1/ml/features: ${res.statusCode} ${res.headers["content-type"]} ${body.slice(0, 300)}`)));
				return;
			}
			res.on("data", (chunk: Buffer) => {
				firstByteMs ??= ms();
				hash.update(chunk);
				bytes += chunk.length;
				for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) rows++;
				last = chunk[chunk.length - 1];
			});
			res.on("end", () => {
				state.request = undefined;
				if (bytes > 0 && last !== 10) reject(new Error("the export stream ended in the middle of a line"));
				else resolve({ rows, bytes, seconds: ms() / 1000, firstByteMs, digest: hash.digest("hex") });
			});
			res.on("error", reject);
		}));
		req.on("timeout", () => req.destroy(new Error("GET /api/v1/ml/features: no data for 120 s")));
		req.on("error", reject);
	});
}

/**
 * What ml-export.features does, in this process: the one `ml-export.features` audit row, the same cursor, the
 * birth date opened with the same AAD, featureRow under the same ML pseudonym, JSON.stringify + "\n".
 * The lines are counted, measured (UTF-8 bytes) and hashed, not kept.
 */
async function rawExport(profiles: Collection, latest: Collection<ScoreDoc & { _id: string }>, pool: pg.Pool, cipher: PiiCipher, subjectOf: (bidx: string) => string, consumer: string): Promise<ExportRun> {
	const t0 = process.hrtime.bigint();
	await rawAudit(pool, consumer, "ml-export.features", null, randomUUID(), "started");
	const cursor = profiles.find({}, { projection: PROJECTION, batchSize: BATCH_SIZE });
	const today = todayIso();
	const hash = createHash("sha256");
	let rows = 0;
	let bytes = 0;
	let firstByteMs: number | null = null;
	// Per chunk of the cursor's batch size, the chunk's latest credit scores by one `$in`, as the service does.
	const write = async (chunk: ProfileDoc[]) => {
		const scores = new Map((await latest.find({ _id: { $in: chunk.map(d => d._id) } }).toArray()).map(d => [d._id, d]));
		for (const doc of chunk) {
			const dataNascimento = cipher.decrypt(doc.dataNascimento_enc, `profiles.dataNascimento:${doc._id}`);
			const line = `${JSON.stringify({ ...featureRow(subjectOf(doc._id), dataNascimento, doc.fonteDeRenda, doc.bens, today), ...creditScoreColumns(scores.get(doc._id)) })}\n`;
			firstByteMs ??= Number(process.hrtime.bigint() - t0) / 1e6;
			hash.update(line);
			bytes += Buffer.byteLength(line);
			rows++;
		}
	};
	let chunk: ProfileDoc[] = [];
	for await (const doc of cursor as AsyncIterable<ProfileDoc>) {
		chunk.push(doc);
		if (chunk.length === BATCH_SIZE) {
			await write(chunk);
			chunk = [];
		}
	}
	if (chunk.length > 0) await write(chunk);
	return { rows, bytes, seconds: Number(process.hrtime.bigint() - t0) / 1e9, firstByteMs, digest: hash.digest("hex") };
}

/** The same cursor, documents only counted: how fast the engine and the driver deliver them. */
async function bareCursor(profiles: Collection): Promise<ExportRun> {
	const t0 = process.hrtime.bigint();
	let rows = 0;
	let firstByteMs: number | null = null;
	for await (const _doc of profiles.find({}, { projection: PROJECTION, batchSize: BATCH_SIZE })) {
		firstByteMs ??= Number(process.hrtime.bigint() - t0) / 1e6;
		rows++;
	}
	return { rows, bytes: 0, seconds: Number(process.hrtime.bigint() - t0) / 1e9, firstByteMs, digest: "" };
}

interface SideSummary extends Omit<Observation<unknown>, "result"> { runs: ExportRun[]; rowsPerSec: number; seconds: number }

/** One warm-up export, then opts.runs measured ones in a row; the median run by time is the figure. */
async function measure(label: string, watch: Watch, once: () => Promise<ExportRun>): Promise<SideSummary> {
	await once();
	const { result: runs, ...observed } = await observe(watch, async () => {
		const out: ExportRun[] = [];
		for (let i = 0; i < opts.runs; i++) out.push(await once());
		return out;
	});
	const seconds = percentile(sortedCopy(runs.map(r => r.seconds)), 50);
	const median = runs.find(r => r.seconds === seconds)!;
	console.log(`  ${label}: ${runs.map(r => `${fmt(r.rows / r.seconds, 0)} rows/s (${fmt(r.seconds)} s)`).join(", ")}`);
	printObservation(observed);
	return { runs, rowsPerSec: median.rows / median.seconds, seconds, ...observed };
}

// ------------------------------------------------------------------ main

async function main(): Promise<void> {
	const machine = machineInfo();
	console.log(`ml-export benchmark: ${opts.profiles} profiles seeded, ${opts.runs} measured export(s) per side after one warm-up, mesh: ${SHAPE_LABELS[shapeOf(opts)]}`);
	console.log(`machine: ${machine.cpus} × ${machine.cpuModel}, ${machine.memGiB} GiB, node ${machine.node}`);
	checkInSync(ROOT, [
		["services/ml-export.service.ts", "find({}, { projection: { dataNascimento_enc: 1, fonteDeRenda: 1, bens: 1 }, batchSize: PAGE })"],
		["services/ml-export.service.ts", "const PAGE = 500;"],
		["services/ml-export.service.ts", "...creditScoreColumns(scores.get(doc._id))"],
		["services/ml-export.service.ts", `pseudonymizer(need(config, "pseudonymKey"), "ml")`],
		["services/ml-export.service.ts", `audit: { before: "started", outcome: () => null }`]
	]);

	const code = gitState(ROOT);
	const { env, cfg } = prepare(ROOT);
	const cipher = new PiiCipher(need(cfg, "piiKeys"), need(cfg, "blindIndexKey"));
	const subjectOf = pseudonymizer(need(cfg, "pseudonymKey"), "ml");
	const adminKey = need(cfg, "adminApiKey");
	const dbUrl = need(cfg, "postgresUrl");
	const mongoUrl = need(cfg, "mongoUrl");

	// The driver with the adapter's options (pool of 10, as mixins/base-b.mixin.ts); one connection to
	// the application's PostgreSQL role for the raw side's audit row.
	state.mongo = await profilesCollection(mongoUrl, 10);
	const { profiles } = state.mongo;
	const latest = state.mongo.client.db().collection<ScoreDoc & { _id: string }>(SCORE_LATEST);
	const pool = (state.pool = new pg.Pool({ connectionString: dbUrl, max: 1, connectionTimeoutMillis: 2000, statement_timeout: 10_000 }));
	const before = await profiles.countDocuments({});

	const mesh = await launchMesh(state, ROOT, env, cfg, { shape: shapeOf(opts), services: SERVICES, waitFor: SERVICES, acceptPartial: basesAandBUp });
	const { base, namespace, logFile } = mesh;
	// The process that runs ml-export (its group's, or the only one), whose memory must stay flat.
	const meshPid = (mesh.procs.find(p => p.name.split(",").includes("ml-export")) ?? mesh.procs[0]).pid;

	console.log(`seeding ${opts.profiles} profiles straight into the collection (insertMany of ${opts.batch}; ${before} profile(s) there already)…`);
	const seedStart = Date.now();
	const seeded = await seed(profiles, cipher);
	const seedSeconds = (Date.now() - seedStart) / 1000;
	const total = await profiles.countDocuments({});
	console.log(`  seeded ${seeded} in ${seedSeconds.toFixed(1)} s (${fmt(seeded / seedSeconds, 0)} profiles/s); the export reads all ${total}`);

	const consumer = await createConsumer(state, base, adminKey, `bench ${namespace}`, ["ml:export"]);
	const sessions: Record<string, string> = { "ferretdb storage (credit_ferret)": ferretStorageUrl(mongoUrl, dbUrl) };

	// Ours, with the mesh process's memory read before, every 50 ms during, and after the exports.
	console.log(`\n[1/3] ${OURS_LABEL}: 1 warm-up + ${opts.runs} export(s)…`);
	const memBefore = memoryOf(meshPid);
	let rssMaxMiB = memBefore?.rssMiB ?? NaN;
	let sampling = true;
	const sampler = (async () => {
		while (sampling) {
			const m = memoryOf(meshPid);
			if (m && !(m.rssMiB <= rssMaxMiB)) rssMaxMiB = m.rssMiB;
			await sleep(50);
		}
	})();
	// VmRSS right after each export (the warm-up first): a plateau is what "flat" looks like.
	const rssAfterEach: number[] = [];
	const ours = await measure("ours", { meshProcs: mesh.procs, dataDir: env.CREDIT_MESH_DATA, sessions }, async () => {
		const r = await oursExport(base, consumer.key);
		rssAfterEach.push(memoryOf(meshPid)?.rssMiB ?? NaN);
		return r;
	});
	sampling = false;
	await sampler;
	const memAfter = memoryOf(meshPid);
	const memory = { before: memBefore, after: memAfter, rssMaxSampledMiB: rssMaxMiB, rssAfterEachExportMiB: rssAfterEach };
	const mem = (m: typeof memBefore) => (m ? `VmRSS ${fmt(m.rssMiB, 1)} MiB, VmHWM ${fmt(m.hwmMiB, 1)} MiB` : "n/a");
	console.log(`  ml-export's process (pid ${meshPid}) memory: before the exports ${mem(memBefore)}; at the end ${mem(memAfter)}; highest VmRSS sampled during ${fmt(rssMaxMiB, 1)} MiB; VmRSS after each export ${rssAfterEach.map(v => fmt(v, 1)).join(", ")} MiB`);

	await revokeConsumer(state);
	await stopMesh(state);
	const warnings = meshWarnings(logFile);

	console.log(`\n[2/3] ${RAW_LABEL}: 1 warm-up + ${opts.runs} run(s)…`);
	const raw = await measure("raw", { meshProcs: [], dataDir: env.CREDIT_MESH_DATA, sessions }, () => rawExport(profiles, latest, pool, cipher, subjectOf, consumer.id));
	console.log(`\n[3/3] ${BARE_LABEL}: 1 warm-up + ${opts.runs} run(s)…`);
	const bare = await measure("bare", { meshProcs: [], dataDir: env.CREDIT_MESH_DATA, sessions }, () => bareCursor(profiles));

	// Same rows, same bytes, same content (the cursor's order is stable while nothing writes).
	const rowsSeen = new Set([...ours.runs, ...raw.runs, ...bare.runs].map(r => r.rows));
	const same = ours.runs[0].digest === raw.runs[0].digest && ours.runs[0].bytes === raw.runs[0].bytes;
	console.log("");
	await removeSeeded();

	const ratio = { oursOverRaw: ours.rowsPerSec / raw.rowsPerSec, oursOverBare: ours.rowsPerSec / bare.rowsPerSec, rawOverBare: raw.rowsPerSec / bare.rowsPerSec };
	console.log(`\nmachine: ${machine.cpus} CPUs (${machine.cpuModel}), node ${machine.node}; ${total} profiles read per export; median of ${opts.runs} run(s) per side after a warm-up\n`);
	const row = (label: string, s: SideSummary) => {
		const r = s.runs.find(x => x.seconds === s.seconds)!;
		return [label, String(r.rows), fmt(s.rowsPerSec, 0), fmt(s.seconds, 2), r.bytes ? fmt(r.bytes / 2 ** 20, 2) : "-", r.firstByteMs === null ? "-" : fmt(r.firstByteMs, 1)];
	};
	console.log(table([["path", "rows", "rows/s", "seconds", "MiB", "first row ms"], row(OURS_LABEL, ours), row(RAW_LABEL, raw), row(BARE_LABEL, bare)]));
	console.log(`\nratio ours/raw: rows/s ${fmt(ratio.oursOverRaw, 3)} (${fmt(ratio.oursOverRaw * 100, 1)} %); ours/bare cursor ${fmt(ratio.oursOverBare, 3)}; raw/bare cursor ${fmt(ratio.rawOverBare, 3)}`);
	console.log(`mesh memory: VmRSS ${fmt(memBefore?.rssMiB ?? NaN, 1)} MiB before → ${fmt(memAfter?.rssMiB ?? NaN, 1)} MiB at the end (highest sampled ${fmt(rssMaxMiB, 1)} MiB); VmHWM ${fmt(memBefore?.hwmMiB ?? NaN, 1)} → ${fmt(memAfter?.hwmMiB ?? NaN, 1)} MiB; after each of the ${opts.runs + 1} exports of ${fmt(ours.runs[0].bytes / 2 ** 20, 2)} MiB: ${rssAfterEach.map(v => fmt(v, 1)).join(", ")} MiB`);
	console.log(same ? "check: the gateway's stream and the raw side's lines are byte-identical (same SHA-256)." : "WARNING: the gateway's stream and the raw side's lines differ (SHA-256 or size): the two sides may not do the same work.");
	if (rowsSeen.size !== 1 || !rowsSeen.has(total)) console.log(`WARNING: the runs read ${[...rowsSeen].join(" / ")} rows, the collection held ${total}: something else wrote to it meanwhile.`);
	console.log("note: the raw side appends the one ml-export.features audit row per export, as the service does; it computes and hashes each line but writes it nowhere (ours writes it to HTTP, read by this process).");
	const noise = noiseWarning([["ours", ours], ["raw", raw], ["bare", bare]]);
	if (noise) console.log(noise);
	printMeshWarnings(warnings);

	const out = await writeResults(ROOT, "ml-export", {
		benchmark: "ml-export",
		at: new Date().toISOString(),
		machine,
		code,
		params: { profilesSeeded: seeded, profilesRead: total, runs: opts.runs, cursorBatchSize: BATCH_SIZE, seedBatch: opts.batch, seedSeconds },
		results: [{ path: OURS_LABEL, ...ours }, { path: RAW_LABEL, ...raw }, { path: BARE_LABEL, ...bare }],
		ratio,
		identical: same,
		meshMemory: memory,
		meshWarnings: warnings.slice(0, 20)
	});
	console.log(gitText(code));
	console.log(`results: ${out}`);
	rmSync(logFile, { force: true }); // kept only when the run fails
}

// Whatever happens, nothing outlives the benchmark for long.
runMain(state, { budgetMs: 900_000 + opts.profiles * 10 * (opts.runs + 2), main, cleanup });
