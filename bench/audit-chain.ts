// The audit log's figures (issue 17): the append rate of the keyed chain (lib/base-a/audit-writer.ts,
// group-committed) against the unkeyed trigger it replaces, and `verify` over a large log, full and
// incremental (lib/base-a/audit-verify.ts). Runs on the TEST database, which it rebuilds (as the tests
// do at every run): `npx tsx bench/audit-chain.ts [--rows 5000000] [--seconds 10] [--clients 16]`.
import { generateKeyPairSync } from "node:crypto";
import { parseArgs } from "node:util";
import pg from "pg";
import { loadConfig, need } from "../config";
import { migrate } from "../migrations";
import { AuditWriter } from "../lib/base-a/audit-writer";
import { ROWS_SQL, type StoredRow, type VerifySources, verifyLog } from "../lib/base-a/audit-verify";
import { enginesEnv, pgTransactor } from "./lib/engines";

const { values } = parseArgs({ options: { rows: { type: "string", default: "5000000" }, seconds: { type: "string", default: "10" }, clients: { type: "string", default: "16" } } });
const ROWS = Number(values.rows);
const SECONDS = Number(values.seconds);
const CLIENTS = Number(values.clients);

const env = { ...process.env, ...enginesEnv(process.cwd(), "test") };
const cfg = loadConfig(env);
const keys = need(cfg, "auditChainKeys");
const ownerUrl = need(cfg, "postgresOwnerUrl");
const pool = new pg.Pool({ connectionString: need(cfg, "postgresUrl"), max: CLIENTS });

const transactor = pgTransactor(pool);

async function reset(): Promise<void> {
	const owner = new pg.Client({ connectionString: ownerUrl });
	await owner.connect();
	await owner.query("DROP SCHEMA public CASCADE; CREATE SCHEMA public;");
	await owner.end();
	await migrate(ownerUrl);
}

/** Appends from CLIENTS loops for SECONDS; rows per second. */
async function rate(append: (i: number) => Promise<unknown>): Promise<number> {
	const until = Date.now() + SECONDS * 1000;
	let done = 0;
	await Promise.all(Array.from({ length: CLIENTS }, async () => {
		while (Date.now() < until) {
			await append(done);
			done++;
		}
	}));
	return done / SECONDS;
}

const LEGACY_SQL = `INSERT INTO audit_log (seq, at, consumer, action, cpf_bidx, request_id, outcome, prev_hash, hash)
	VALUES (0, now(), $1, 'cpf-lookup.get', $2, $3, 'ok', '', '')`;
const bidx = "a".repeat(64);

async function main(): Promise<void> {
	console.log(`audit-chain benchmark: ${CLIENTS} clients × ${SECONDS} s per append side, verify over ${ROWS} rows`);
	await reset();
	// Before the epoch the trigger still chains unkeyed rows: today's path, one INSERT per row.
	const legacy = await rate(i => pool.query(LEGACY_SQL, ["bench", bidx, `r${i}`]));
	console.log(`append, unkeyed trigger (one INSERT per row): ${legacy.toFixed(0)} rows/s`);
	const writer = new AuditWriter(transactor, keys);
	const keyed = await rate(i => writer.append({ consumer: "bench", action: "cpf-lookup.get", cpfBidx: bidx, requestId: `r${i}`, outcome: "ok" }));
	console.log(`append, keyed chain (HMAC in node, group commit): ${keyed.toFixed(0)} rows/s`);

	// Fill to ROWS keyed rows, 20 000 appends in flight at a time (batches of 500 per transaction).
	const t0 = Date.now();
	let head = await writer.begin();
	while (head < ROWS) {
		const n = Math.min(20_000, ROWS - head);
		const seqs = await Promise.all(Array.from({ length: n }, (_, i) => writer.append({ consumer: "bench", action: "cpf-lookup.get", cpfBidx: bidx, requestId: `f${head + i}`, outcome: "ok" })));
		head = seqs[seqs.length - 1];
		if (head % 500_000 < 20_000) console.log(`  filled ${head} rows (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
	}
	console.log(`fill: ${ROWS} rows in ${((Date.now() - t0) / 1000).toFixed(0)} s`);

	const sources: VerifySources = {
		rows: async (after, limit, epoch) => (await pool.query<StoredRow>(ROWS_SQL, [after, limit, epoch])).rows,
		head: async () => Number((await pool.query("SELECT coalesce(max(seq), 0) AS head FROM audit_log")).rows[0].head),
		markerSeq: async () => Number((await pool.query("SELECT min(seq) AS seq FROM audit_log WHERE key_id IS NOT NULL")).rows[0].seq),
		message: async () => null,
		keys, publicKey: generateKeyPairSync("ed25519").publicKey, namespace: "bench"
	};
	let t = Date.now();
	const full = await verifyLog(sources, true);
	console.log(`verify full: ${full.rows} rows in ${((Date.now() - t) / 1000).toFixed(1)} s, ok ${full.ok}`);
	// Incremental: from a checkpoint a minute of appends (at the keyed rate measured above) before the head.
	const behind = Math.max(1, Math.round(keyed * 60));
	const [row] = (await pool.query("SELECT hash FROM audit_log WHERE seq = $1", [full.head - behind])).rows;
	t = Date.now();
	const inc = await verifyLog(sources, false, { streamSeq: 0, cp: { v: 1, namespace: "bench", epoch: (await sources.markerSeq())!, seq: full.head - behind, hash: row.hash, at: "", node: "", prevSeq: 0, prevDigest: "" } });
	console.log(`verify incremental (${behind} rows after the checkpoint): ${inc.rows} rows in ${((Date.now() - t) / 1000).toFixed(2)} s, ok ${inc.ok}`);
	await pool.end();
}

main().catch(err => {
	console.error(err);
	process.exit(1);
});
