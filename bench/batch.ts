import path from "node:path";
import { rmSync } from "node:fs";
import { Client as EsClient } from "@elastic/elasticsearch";
import pg from "pg";
import { need } from "../config";
import { randomCpf } from "../lib/cpf";
import { todayIso } from "../lib/dates";
import { PiiCipher, pseudonymizer } from "../lib/pii";
import type { ProfileDoc } from "../lib/base-b/profile";
import { scoreProfile } from "../lib/base-b/score";
import { DEBT_SUMMARY_SQL } from "../lib/base-a/debt-summary";
import { scoreStatsSearches } from "../lib/base-c/score-stats";
import { BATCH_CHUNK, BATCH_MAX_CPFS, chunks } from "../lib/batch";
import { parseFlags } from "../scripts/args";
import { deleteSeededProfiles, profilesCollection } from "./lib/base-b";
import { inParallel, randomProfile } from "./lib/data";
import { prepare } from "./lib/engines";
import { call, createConsumer, expect } from "./lib/http";
import { runMain, stopEverything } from "./lib/lifecycle";
import type { BenchState } from "./lib/state";
import { basesAandBUp, launchMesh } from "./lib/mesh";
import { fmt, gitState, gitText, machineInfo, table, writeResults } from "./lib/report";

/**
 * bench/batch.ts (`npm run bench:batch`): the same CPFs scored three ways, each timed end to end:
 *  - POST /api/v1/scores/batch, all of them in one streamed request (until the last line);
 *  - GET /api/v1/scores/:cpf, one call per CPF, `--concurrency` at a time;
 *  - the raw set-based reads of the three engines per chunk of 500, as the batch makes them (one
 *    `= ANY` query, one `$in` with the decryption and asset score, one `_msearch`), chunk after chunk.
 * Targets (issue 14): batch ≥ 10× the single calls, and ≥ 0.5 of the raw reads.
 */
const ROOT = path.resolve(__dirname, "..");
const SERVICES = ["api", "consumers", "audit", "idempotency", "events-relay", "profiles", "asset-score", "score-history", "cpf-lookup", "activity", "credit-score"];

const opts = parseFlags(process.argv.slice(2), {
	cpfs: { type: "number", default: BATCH_MAX_CPFS },
	concurrency: { type: "number", default: 32 },
	split: { type: "boolean" }
});

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

async function main(): Promise<void> {
	const machine = machineInfo();
	console.log(`batch benchmark: ${opts.cpfs} CPFs, concurrency ${opts.concurrency} for the single calls; machine ${machine.cpus} × ${machine.cpuModel}`);
	const code = gitState(ROOT);
	const { env, cfg } = prepare(ROOT);
	const cipher = new PiiCipher(need(cfg, "piiKeys"), need(cfg, "blindIndexKey"));
	const subjectOf = pseudonymizer(need(cfg, "pseudonymKey"), "activity");
	const adminKey = need(cfg, "adminApiKey");
	const mesh = await launchMesh(state, ROOT, env, cfg, { split: !!opts.split, services: SERVICES, waitFor: SERVICES, acceptPartial: basesAandBUp });
	const { base, logFile } = mesh;
	state.mongo = await profilesCollection(need(cfg, "mongoUrl"), 8);
	const pool = (state.pool = new pg.Pool({ connectionString: need(cfg, "postgresUrl"), max: 4 }));
	const es = (state.es = new EsClient({ node: need(cfg, "elasticsearchUrl") }));
	const consumer = await createConsumer(state, base, adminKey, `bench batch ${mesh.namespace}`, ["score:read"]);

	const unique = new Set<string>();
	while (unique.size < opts.cpfs) unique.add(randomCpf());
	const cpfs = [...unique];
	const docs = cpfs.map(cpf => profileDoc(cipher, cpf));
	state.seeded.push(...docs.map(d => d._id));
	for (let i = 0; i < docs.length; i += 2000) await state.mongo.profiles.insertMany(docs.slice(i, i + 2000) as any[], { ordered: false });
	console.log(`seeded ${cpfs.length} profiles (Base B; Bases A and C know none of them, so their reads find nothing)`);

	// Batch: one request, until its last line.
	let lines = 0;
	const batchSeconds = await timed(async () => {
		const res = await fetch(`${base}/api/v1/scores/batch`, { method: "POST", headers: { authorization: `Bearer ${consumer.key}`, finalidade: "concessao_credito", "content-type": "application/json" }, body: JSON.stringify(cpfs) });
		if (res.status !== 200) throw new Error(`POST /scores/batch: ${res.status} ${await res.text()}`);
		const text = await res.text();
		lines = text.trim().split("\n").filter(l => JSON.parse(l).status === "ok").length;
	});
	if (lines !== cpfs.length) console.warn(`warning: ${cpfs.length - lines} batch lines were not ok`);

	// Single calls, the same CPFs at the given concurrency.
	let next = 0;
	const singleSeconds = await timed(() => inParallel(cpfs.length, opts.concurrency, "single GET /scores/:cpf", async () => {
		expect(await call(base, "GET", `/api/v1/scores/${cpfs[next++]}`, consumer.key), 200, "GET /api/v1/scores/:cpf");
	}));

	// Raw set-based reads, per chunk, the three engines in parallel as the batch reads them.
	const today = todayIso();
	const prefix = need(cfg, "esIndexPrefix");
	const rawSeconds = await timed(async () => {
		for (const { items } of chunks(cpfs, BATCH_CHUNK)) {
			const bidxs = items.map(c => cipher.blindIndex(c));
			await Promise.all([
				pool.query(DEBT_SUMMARY_SQL, [bidxs, today]),
				state.mongo!.profiles.find({ _id: { $in: bidxs } as any }, { projection: { dataNascimento_enc: 1, fonteDeRenda: 1, bens: 1 } }).toArray().then(found => (found as unknown as ProfileDoc[]).map(d =>
					scoreProfile({ dataNascimento: cipher.decrypt(d.dataNascimento_enc, `profiles.dataNascimento:${d._id}`), fonteDeRenda: d.fonteDeRenda, bens: d.bens }, today))),
				es.msearch({ searches: scoreStatsSearches(items.map(subjectOf), today, `${prefix}-movements`, `${prefix}-consultations`) as any })
			]);
		}
	});

	const rate = (s: number) => cpfs.length / s;
	console.log("");
	console.log(table([
		["path", "seconds", "CPFs/s"],
		["POST /scores/batch (one streamed request)", fmt(batchSeconds), fmt(rate(batchSeconds), 0)],
		[`GET /scores/:cpf × ${cpfs.length}, concurrency ${opts.concurrency}`, fmt(singleSeconds), fmt(rate(singleSeconds), 0)],
		[`raw set-based reads, chunks of ${BATCH_CHUNK} (= ANY, $in + decrypt + asset score, _msearch)`, fmt(rawSeconds), fmt(rate(rawSeconds), 0)]
	]));
	const vsSingle = singleSeconds / batchSeconds;
	const vsRaw = rawSeconds / batchSeconds;
	console.log(`\nbatch / single calls: ${fmt(vsSingle)}× (target ≥ 10)\nbatch / raw reads: ${fmt(vsRaw)} (target ≥ 0.5)`);
	console.log("note: the batch also writes an audit row per CPF (one INSERT per chunk), a consultation message per chunk and the score history; the raw side only reads.");
	const out = await writeResults(ROOT, "batch", {
		benchmark: "batch", at: new Date().toISOString(), machine, code,
		params: { cpfs: cpfs.length, concurrency: opts.concurrency, chunk: BATCH_CHUNK, split: !!opts.split },
		results: { batchSeconds, singleSeconds, rawSeconds }, ratio: { batchVsSingle: vsSingle, batchVsRaw: vsRaw }
	});
	console.log(gitText(code));
	console.log(`results: ${out}`);
	rmSync(logFile, { force: true });
}

runMain(state, { budgetMs: 1_800_000, main, cleanup });
