import path from "node:path";
import { readFileSync, rmSync } from "node:fs";
import { Client as EsClient } from "@elastic/elasticsearch";
import pg from "pg";
import { need } from "../config";
import { randomCpf } from "../lib/cpf";
import { todayIso } from "../lib/dates";
import { PiiCipher, pseudonymizer } from "../lib/pii";
import type { ProfileDoc } from "../lib/base-b/profile";
import { scoreProfile } from "../lib/base-b/score";
import { DEBT_SUMMARY_SQL } from "../lib/base-a/debt-summary";
import { LOOKUP_MANY_SQL, payloadA, rowsByBidx } from "../lib/base-a/lookup";
import { profileView } from "../lib/base-b/profile";
import { scoreStatsSearches } from "../lib/base-c/score-stats";
import { payloadCSearches } from "../lib/base-c/payload-c";
import { BATCH_CHUNK, BATCH_MAX_CPFS, chunks } from "../lib/batch";
import { parseFlags } from "../scripts/args";
import { deleteSeededProfiles, profilesCollection } from "./lib/base-b";
import { inParallel, randomProfile } from "./lib/data";
import { prepare } from "./lib/engines";
import { call, createConsumer, expect } from "./lib/http";
import { runMain, stopEverything } from "./lib/lifecycle";
import type { BenchState } from "./lib/state";
import { basesAandBUp, launchMesh, SHAPE_FLAGS, shapeOf } from "./lib/mesh";
import { fmt, gitState, gitText, machineInfo, table, writeResults } from "./lib/report";

/**
 * bench/batch.ts (`npm run bench:batch`): the same CPFs scored and reported several ways, each timed end to end:
 *  - POST /api/v1/scores/batch, all of them in one streamed request (until the last line);
 *  - GET /api/v1/scores/:cpf, one call per CPF, `--concurrency` at a time (`--single N`: the first N only);
 *  - the raw reads one single score needs (one row set per base: the debt summary SQL, `findOne` with the
 *    decryption and asset score, one `_msearch` of the two stats searches), per CPF at the same concurrency;
 *  - the raw set-based reads of the three engines per chunk of 500, as the score batch makes them (one
 *    `= ANY` query, one `$in` with the decryption and asset score, one `_msearch`), chunk after chunk;
 *  - POST /api/v1/reports/batch in one streamed request, and the raw set-based reads it makes per chunk
 *    (the lookup's `= ANY`, one `$in` — payload B opened and the asset score — and the payload C `_msearch`).
 * Targets (issue 14): score batch ≥ 10× the single calls and ≥ 0.5 of its raw reads; the single score
 * ≥ 0.5 of its raw reads; the report batch ≥ 0.5 of its raw reads.
 */
const ROOT = path.resolve(__dirname, "..");
const SERVICES = ["api", "consumers", "audit", "idempotency", "events-relay", "profiles", "asset-score", "score-history", "cpf-lookup", "activity", "credit-score", "report"];

const opts = parseFlags(process.argv.slice(2), {
	cpfs: { type: "number", default: BATCH_MAX_CPFS },
	concurrency: { type: "number", default: 32 },
	...SHAPE_FLAGS,
	single: { type: "number", default: 0 }
});
const shape = shapeOf(opts);

const state: BenchState & { mongo?: Awaited<ReturnType<typeof profilesCollection>>; pool?: pg.Pool; es?: EsClient; seeded: string[]; cleaning?: Promise<void> } = { children: [], seeded: [] };

async function cleanup(): Promise<void> {
	state.cleaning ??= (async () => {
		await stopEverything(state);
		if (state.mongo && state.seeded.length) await deleteSeededProfiles(state.mongo.profiles, state.seeded.splice(0)).catch(err => console.error(`could not remove the seeded profiles: ${err.message}`));
		await state.mongo?.client.close().catch(() => undefined);
		await state.pool?.end().catch(() => undefined);
		await state.es?.close().catch(() => undefined);
	})();
	return state.cleaning;
}

/** Profiles sealed as the profiles service seals them, inserted set-based with the raw driver (as test/services/ml-export.test.ts). */
function profileDoc(cipher: PiiCipher, cpf: string) {
	const _id = cipher.blindIndex(cpf);
	const p = randomProfile(cpf);
	const iso = (d: string) => d.split("/").reverse().join("-");
	const seal = (field: string, value: string) => cipher.encrypt(value, `profiles.${field}:${_id}`);
	return {
		_id, cpf_enc: seal("cpf", cpf), endereco_enc: seal("endereco", p.endereco), dataNascimento_enc: seal("dataNascimento", iso(p.dataNascimento)),
		fonteDeRenda: p.fonteDeRenda, bens: p.bens.map(b => ({ ...b, inicioPosse: iso(b.inicioPosse) })), createdAt: new Date(), updatedAt: new Date()
	};
}

async function timed(work: () => Promise<unknown>): Promise<number> {
	const t = process.hrtime.bigint();
	await work();
	return Number(process.hrtime.bigint() - t) / 1e9;
}

/** The mean of the batch chunks' debug timings in the mesh's log, per service. */
function chunkProfile(logFile: string): string[][] {
	const sums = new Map<string, number[]>();
	for (const line of readFileSync(logFile, "utf8").split("\n")) {
		const m = /Batch chunk at \d+ \(\d+ CPFs\), ms: reads (\d+), audit and consultations (\d+), after (\d+), serialise ([\d.]+)/.exec(line);
		if (!m) continue;
		const service = /"mod":"([\w-]+)"/.exec(line)?.[1] ?? "?";
		const sum = sums.get(service) ?? [0, 0, 0, 0, 0];
		sums.set(service, [sum[0] + 1, ...m.slice(1).map((v, i) => sum[i + 1] + Number(v))]);
	}
	return [...sums].map(([service, [n, ...rest]]) => [service, String(n), ...rest.map(v => fmt(v / n, 1))]);
}

async function main(): Promise<void> {
	const machine = machineInfo();
	console.log(`batch benchmark: ${opts.cpfs} CPFs, concurrency ${opts.concurrency} for the single calls; machine ${machine.cpus} × ${machine.cpuModel}`);
	const code = gitState(ROOT);
	const { env, cfg } = prepare(ROOT);
	const cipher = new PiiCipher(need(cfg, "piiKeys"), need(cfg, "blindIndexKey"));
	const subjectOf = pseudonymizer(need(cfg, "pseudonymKey"), "activity");
	const adminKey = need(cfg, "adminApiKey");
	const mesh = await launchMesh(state, ROOT, env, cfg, { shape, services: SERVICES, waitFor: SERVICES, acceptPartial: basesAandBUp });
	const { base, logFile } = mesh;
	state.mongo = await profilesCollection(need(cfg, "mongoUrl"), 8);
	const pool = (state.pool = new pg.Pool({ connectionString: need(cfg, "postgresUrl"), max: 4 }));
	const es = (state.es = new EsClient({ node: need(cfg, "elasticsearchUrl") }));
	const consumer = await createConsumer(state, base, adminKey, `bench batch ${mesh.namespace}`, ["score:read", "reports:read", "persons:read", "profiles:read", "activity:read"]);

	const unique = new Set<string>();
	while (unique.size < opts.cpfs) unique.add(randomCpf());
	const cpfs = [...unique];
	const docs = cpfs.map(cpf => profileDoc(cipher, cpf));
	state.seeded.push(...docs.map(d => d._id));
	for (let i = 0; i < docs.length; i += 2000) await state.mongo.profiles.insertMany(docs.slice(i, i + 2000) as any[], { ordered: false });
	console.log(`seeded ${cpfs.length} profiles (Base B; Bases A and C know none of them, so their reads find nothing)`);

	/** One batch request, until its last line; how many lines were ok. */
	const batchOf = async (route: string): Promise<number> => {
		const res = await fetch(`${base}/api/v1/${route}/batch`, { method: "POST", headers: { authorization: `Bearer ${consumer.key}`, finalidade: "concessao_credito", "content-type": "application/json" }, body: JSON.stringify(cpfs) });
		if (res.status !== 200) throw new Error(`POST /${route}/batch: ${res.status} ${await res.text()}`);
		const text = await res.text();
		const ok = text.trim().split("\n").filter(l => JSON.parse(l).status === "ok").length;
		if (ok !== cpfs.length) console.warn(`warning: ${cpfs.length - ok} lines of POST /${route}/batch were not ok`);
		return ok;
	};
	const batchSeconds = await timed(() => batchOf("scores"));
	console.log(`POST /scores/batch: ${fmt(batchSeconds)} s`);

	// Single calls, the same CPFs (or the first --single) at the given concurrency.
	const singles = opts.single > 0 ? Math.min(opts.single, cpfs.length) : cpfs.length;
	let next = 0;
	const singleSeconds = await timed(() => inParallel(singles, opts.concurrency, "single GET /scores/:cpf", async () => {
		expect(await call(base, "GET", `/api/v1/scores/${cpfs[next++]}`, consumer.key), 200, "GET /api/v1/scores/:cpf");
	}));
	console.log(`GET /scores/:cpf × ${singles}: ${fmt(singleSeconds)} s`);

	const today = todayIso();
	const prefix = need(cfg, "esIndexPrefix");
	const movementsIndex = `${prefix}-movements`;
	const consultationsIndex = `${prefix}-consultations`;
	const assetScoreOf = (d: ProfileDoc) => scoreProfile({ dataNascimento: cipher.decrypt(d.dataNascimento_enc, `profiles.dataNascimento:${d._id}`), fonteDeRenda: d.fonteDeRenda, bens: d.bens }, today);
	const scoreProjection = { projection: { dataNascimento_enc: 1, fonteDeRenda: 1, bens: 1 } };

	// The raw reads of one single score, per CPF at the same concurrency: one row set per base.
	next = 0;
	const singleRawSeconds = await timed(() => inParallel(singles, opts.concurrency, "raw reads of one score", async () => {
		const cpf = cpfs[next++];
		const bidx = cipher.blindIndex(cpf);
		await Promise.all([
			pool.query(DEBT_SUMMARY_SQL, [[bidx], today]),
			state.mongo!.profiles.findOne({ _id: bidx } as any, scoreProjection).then(d => d && assetScoreOf(d as unknown as ProfileDoc)),
			es.msearch({ searches: scoreStatsSearches([subjectOf(cpf)], today, movementsIndex, consultationsIndex) as any })
		]);
	}));

	// Raw set-based reads, per chunk, the three engines in parallel as the score batch reads them.
	const rawSeconds = await timed(async () => {
		for (const { items } of chunks(cpfs, BATCH_CHUNK)) {
			const bidxs = items.map(c => cipher.blindIndex(c));
			await Promise.all([
				pool.query(DEBT_SUMMARY_SQL, [bidxs, today]),
				state.mongo!.profiles.find({ _id: { $in: bidxs } as any }, scoreProjection).toArray().then(found => (found as unknown as ProfileDoc[]).map(assetScoreOf)),
				es.msearch({ searches: scoreStatsSearches(items.map(subjectOf), today, movementsIndex, consultationsIndex) as any })
			]);
		}
	});

	// The report batch, and the raw set-based reads it makes per chunk.
	const reportSeconds = await timed(() => batchOf("reports"));
	console.log(`POST /reports/batch: ${fmt(reportSeconds)} s`);
	const reportRawSeconds = await timed(async () => {
		for (const { items } of chunks(cpfs, BATCH_CHUNK)) {
			const bidxs = items.map(c => cipher.blindIndex(c));
			const open = (table: string, owner: string, row: Record<string, any>, fields: string[]) => Object.fromEntries(fields.map(f => [f, cipher.decrypt(row[`${f}_enc`], `${table}.${f}:${owner}`)]));
			await Promise.all([
				pool.query(LOOKUP_MANY_SQL, [bidxs]).then(r => {
					const byBidx = rowsByBidx(r.rows);
					return bidxs.map(b => payloadA(byBidx.get(b) ?? [], row => open("persons", b, row, ["cpf", "nome", "endereco"])));
				}),
				state.mongo!.profiles.find({ _id: { $in: bidxs } as any }).toArray().then(found => (found as unknown as ProfileDoc[]).map(d => [
					profileView(d, open("profiles", d._id, d, ["cpf", "endereco", "dataNascimento"]) as { cpf: string; endereco: string; dataNascimento: string }, today), assetScoreOf(d)])),
				es.msearch({ searches: payloadCSearches(items.map(subjectOf), movementsIndex, consultationsIndex) as any })
			]);
		}
	});

	const rate = (s: number, n = cpfs.length) => n / s;
	console.log("");
	console.log(table([
		["path", "seconds", "CPFs/s"],
		["POST /scores/batch (one streamed request)", fmt(batchSeconds), fmt(rate(batchSeconds), 0)],
		[`GET /scores/:cpf × ${singles}, concurrency ${opts.concurrency}`, fmt(singleSeconds), fmt(rate(singleSeconds, singles), 0)],
		[`raw reads of one score × ${singles}, concurrency ${opts.concurrency} (debt summary, findOne + decrypt + asset score, _msearch)`, fmt(singleRawSeconds), fmt(rate(singleRawSeconds, singles), 0)],
		[`raw set-based reads, chunks of ${BATCH_CHUNK} (= ANY, $in + decrypt + asset score, _msearch)`, fmt(rawSeconds), fmt(rate(rawSeconds), 0)],
		["POST /reports/batch (one streamed request)", fmt(reportSeconds), fmt(rate(reportSeconds), 0)],
		[`raw set-based report reads, chunks of ${BATCH_CHUNK} (= ANY lookup, $in + decrypt + asset score, payload C _msearch)`, fmt(reportRawSeconds), fmt(rate(reportRawSeconds), 0)]
	]));
	const vsSingle = rate(batchSeconds) / rate(singleSeconds, singles);
	const vsRaw = rawSeconds / batchSeconds;
	const singleVsRaw = singleRawSeconds / singleSeconds;
	const reportVsRaw = reportRawSeconds / reportSeconds;
	console.log(`\nscore batch / single calls: ${fmt(vsSingle)}× (target ≥ 10)\nscore batch / raw reads: ${fmt(vsRaw)} (target ≥ 0.5)`);
	console.log(`single score / its raw reads: ${fmt(singleVsRaw)} (target ≥ 0.5)\nreport batch / raw reads: ${fmt(reportVsRaw)} (target ≥ 0.5)`);
	console.log("note: the batches also write an audit row per CPF (one INSERT per chunk), a consultation message per chunk (and the score batch the history); the single score writes its audit row, consultation and history; the raw sides only read.");
	const out = await writeResults(ROOT, "batch", {
		benchmark: "batch", at: new Date().toISOString(), machine, code,
		params: { cpfs: cpfs.length, singles, concurrency: opts.concurrency, chunk: BATCH_CHUNK, shape },
		results: { batchSeconds, singleSeconds, singleRawSeconds, rawSeconds, reportSeconds, reportRawSeconds },
		ratio: { batchVsSingle: vsSingle, batchVsRaw: vsRaw, singleVsRaw, reportVsRaw }
	});
	// With BENCH_LOG_LEVEL=debug the batches log where each chunk's time went (mixins/batch.mixin.ts): the mean per service.
	const profile = chunkProfile(logFile);
	if (profile.length > 0) console.log(`\nwhere a chunk's time went (mean ms per chunk of ${BATCH_CHUNK}):\n${table([["service", "chunks", "reads", "audit + consultations", "history (overlapped, previous chunk)", "serialise"], ...profile])}`);
	console.log(gitText(code));
	console.log(`results: ${out}`);
	rmSync(logFile, { force: true });
}

runMain(state, { budgetMs: 1_800_000, main, cleanup });
