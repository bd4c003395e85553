import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomCpf } from "../../lib/cpf";
import { api, eventually, startMesh, type Mesh } from "../support/mesh";
import { prometheusReporter } from "../../broker/prometheus.reporter";
import { appQuery, ownerQuery } from "../support/db";
import { piiCipher } from "../support/keys";
import { generateKeyPairSync } from "node:crypto";
import { ServiceBroker } from "moleculer";
import brokerConfig from "../../moleculer.config";
import AuditService from "../../services/audit.service";
import { config } from "../../config";
import { connect } from "nats";
import { natsOptions } from "../../config/nats";
import { channel } from "../../lib/mesh/streams";
import { signCheckpoint } from "../../lib/base-a/audit-chain";
import type { GoodCheckpoint } from "../../lib/base-a/audit-verify";

let mesh: Mesh;
let cpf: string;
beforeAll(async () => {
	mesh = await startMesh();
	cpf = randomCpf();
	await api(mesh, "POST", "/api/v1/persons", { body: { cpf, nome: "Auditada Silva", endereco: "Rua F, 6" } });
	await api(mesh, "GET", `/api/v1/persons/${cpf}`);
	await api(mesh, "GET", `/api/v1/persons/${cpf}`);
});
afterAll(async () => {
	await mesh?.stop();
});

/** Runs statements as the owner with the audit triggers off, as an intruder with owner rights would. */
async function tamper(sql: string) {
	await ownerQuery(`BEGIN; ALTER TABLE audit_log DISABLE TRIGGER USER; ${sql}; ALTER TABLE audit_log ENABLE TRIGGER USER; COMMIT;`);
}

describe("audit trail", () => {
	it("records every read and write of a CPF with consumer, request id and outcome", async () => {
		const res = await api(mesh, "GET", `/api/v1/audit?cpf=${cpf}`);
		expect(res.status).toBe(200);
		expect(res.body.entries.map((e: any) => [e.action, e.outcome])).toEqual([
			["persons.create", "ok"], ["cpf-lookup.get", "ok"], ["cpf-lookup.get", "ok"]
		]);
		for (const e of res.body.entries) {
			expect(e.consumer).toBeTruthy();
			expect(e.requestId).toBeTruthy();
		}
		const missing = randomCpf();
		await api(mesh, "GET", `/api/v1/persons/${missing}`);
		const miss = await api(mesh, "GET", `/api/v1/audit?cpf=${missing}`);
		expect(miss.body.entries.map((e: any) => e.outcome)).toEqual(["not_found"]);
	});

	it("names every act by its action; rows written under an older name read under the current one, their chain intact", async () => {
		const old = randomCpf();
		const bidx = piiCipher().blindIndex(old);
		// Rows under the names a release before migration 005 wrote (appended to the chain as any row is).
		for (const action of ["persons.read", "score.read", "debts.create", "privacy.access"]) {
			await mesh.broker("audit").call("audit.append", { action, cpfBidx: bidx, outcome: "ok" });
		}
		const res = await api(mesh, "GET", `/api/v1/audit?cpf=${old}`);
		expect(res.body.entries.map((e: any) => e.action)).toEqual(["cpf-lookup.get", "asset-score.get", "debt-write.create", "privacy.access"]);
		const [stored] = await ownerQuery<{ actions: string[] }>("SELECT array_agg(action ORDER BY seq) AS actions FROM audit_log WHERE cpf_bidx = $1", [bidx]);
		expect(stored.actions).toEqual(["persons.read", "score.read", "debts.create", "privacy.access"]);
		expect((await api(mesh, "GET", "/api/v1/audit/verify")).body).toMatchObject({ ok: true, broken: [] });
	});

	it("is insert-only for the application's role", async () => {
		await expect(appQuery("UPDATE audit_log SET outcome = 'x' WHERE seq = 1")).rejects.toThrow(/permission denied|insert-only/);
		await expect(appQuery("DELETE FROM audit_log WHERE seq = 1")).rejects.toThrow(/permission denied|insert-only/);
		await expect(appQuery("TRUNCATE audit_log")).rejects.toThrow(/permission denied|insert-only/);
		// Even the owner is stopped by the triggers.
		await expect(ownerQuery("UPDATE audit_log SET outcome = 'x' WHERE seq = 1")).rejects.toThrow(/insert-only/);
	});

	it("verify passes on an intact chain, and finds a changed row and a deleted row", async () => {
		const intact = await api(mesh, "GET", "/api/v1/audit/verify");
		expect(intact.status).toBe(200);
		expect(intact.body).toMatchObject({ ok: true, broken: [] });
		expect(intact.body.rows).toBeGreaterThanOrEqual(3);

		const [victim] = await ownerQuery("SELECT seq::int, outcome FROM audit_log WHERE seq = 2");
		await tamper("UPDATE audit_log SET outcome = 'ok-edited' WHERE seq = 2");
		const changed = await api(mesh, "GET", "/api/v1/audit/verify");
		expect(changed.body.ok).toBe(false);
		expect(changed.body.broken).toContainEqual({ seq: 2, reason: "row changed" });
		await tamper(`UPDATE audit_log SET outcome = '${victim.outcome}' WHERE seq = 2`);
		expect((await api(mesh, "GET", "/api/v1/audit/verify")).body.ok).toBe(true);

		await tamper("DROP TABLE IF EXISTS audit_saved; CREATE TABLE audit_saved AS SELECT * FROM audit_log WHERE seq = 2; DELETE FROM audit_log WHERE seq = 2");
		const deleted = await api(mesh, "GET", "/api/v1/audit/verify");
		expect(deleted.body.ok).toBe(false);
		expect(deleted.body.broken).toContainEqual({ seq: 3, reason: "row missing before it" });
		await tamper("INSERT INTO audit_log SELECT * FROM audit_saved; DROP TABLE audit_saved");
		expect((await api(mesh, "GET", "/api/v1/audit/verify")).body.ok).toBe(true);
	});
});

describe("audit chain gauge (the CreditMeshAuditChainBroken alert)", () => {
	/** The audit node's gauges, as Prometheus reads them. */
	async function gauges(): Promise<{ ok?: number; verifiedAt?: number }> {
		const text = await prometheusReporter(mesh.broker("audit"))!.scrape();
		const value = (name: string) => {
			const m = new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, "m").exec(text);
			return m ? Number(m[1]) : undefined;
		};
		return { ok: value("credit_mesh_audit_chain_ok"), verifiedAt: value("credit_mesh_audit_chain_verified_timestamp_seconds") };
	}

	it("is set by the verification audit runs on its own after start, and by every verify: 0 while a row is changed", async () => {
		// Nobody called verify in this describe yet: the run a second after start set it.
		const first = await eventually(gauges, g => g.ok !== undefined, 10_000, 200);
		expect(first.ok).toBe(1);
		expect(first.verifiedAt).toBeGreaterThan(Date.now() / 1000 - 600);

		const [victim] = await ownerQuery("SELECT seq::int, outcome FROM audit_log WHERE seq = 1");
		await tamper("UPDATE audit_log SET outcome = 'ok-edited' WHERE seq = 1");
		try {
			expect((await api(mesh, "GET", "/api/v1/audit/verify")).body.ok).toBe(false);
			expect((await gauges()).ok).toBe(0);
		} finally {
			await tamper(`UPDATE audit_log SET outcome = '${victim.outcome}' WHERE seq = 1`);
		}
		expect((await api(mesh, "GET", "/api/v1/audit/verify")).body.ok).toBe(true);
		expect((await gauges()).ok).toBe(1);
	});
});

describe("audit list", () => {
	it("pages in numeric order, across a change in the number of digits, each page going on where the last ended", async () => {
		// Past ten rows at least, when this file runs alone on a fresh log.
		for (let i = 0; i < 15; i++) await mesh.broker("audit").call("audit.append", { action: "test.filler", outcome: "ok" });
		const [{ max }] = await ownerQuery<{ max: number }>("SELECT max(seq)::int AS max FROM audit_log");
		// The last power of ten the log has passed by a few rows: 998, 999, 1000… (as text, "1000" sorts before "998").
		let boundary = 10 ** (String(max).length - 1);
		if (max < boundary + 3) boundary /= 10;
		let after = boundary - 3;
		for (let page = 0; page < 2; page++) {
			const res = await api(mesh, "GET", `/api/v1/audit?limit=5&after=${after}`);
			expect(res.status).toBe(200);
			const expected = await ownerQuery<{ seq: number }>("SELECT seq::int AS seq FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT 5", [after]);
			expect(res.body.entries.map((e: any) => e.seq)).toEqual(expected.map(r => r.seq));
			after = res.body.next;
		}
	});

	it("answers 422, not 500, to an `after` past what the log can hold (found by the fuzzer)", async () => {
		const res = await api(mesh, "GET", "/api/v1/audit?after=148929321859728352261261230080");
		expect(res.status).toBe(422);
	});
});

/** The audit service of the mesh, to checkpoint now instead of at its interval. */
const auditService = () => mesh.broker("audit").getLocalService("audit") as unknown as { checkpoint(): Promise<GoodCheckpoint | null> };
const append = (n: number, action = "test.chain") =>
	Promise.all(Array.from({ length: n }, () => mesh.broker("audit").call("audit.append", { action, outcome: "ok" })));
const verify = async (full = false) => (await api(mesh, "GET", `/api/v1/audit/verify${full ? "?full=true" : ""}`)).body;
const headSeq = async () => (await ownerQuery<{ head: number }>("SELECT max(seq)::int AS head FROM audit_log"))[0].head;

/** Keeps the whole log aside, runs `sql` with the triggers off, then puts the log back as it was. */
async function tamperThenRestore(sql: string, check: () => Promise<void>) {
	await tamper("DROP TABLE IF EXISTS audit_whole; CREATE TABLE audit_whole AS SELECT * FROM audit_log");
	try {
		await tamper(sql);
		await check();
	} finally {
		await tamper("DELETE FROM audit_log; INSERT INTO audit_log SELECT * FROM audit_whole; DROP TABLE audit_whole");
	}
}

describe("keyed chain and signed checkpoints (issue 17)", () => {
	it("keys every row after the epoch marker and refuses an unkeyed row from then on", async () => {
		const [marker] = await ownerQuery("SELECT seq::int, key_id FROM audit_log WHERE action = 'audit.chain' AND outcome = 'keyed'");
		expect(marker.key_id).toBeTruthy();
		expect(await ownerQuery("SELECT seq FROM audit_log WHERE seq >= $1 AND key_id IS NULL", [marker.seq])).toEqual([]);
		await expect(ownerQuery("INSERT INTO audit_log (seq, at, consumer, action, outcome, prev_hash, hash) VALUES (0, now(), 'x', 'x', 'ok', '', '')"))
			.rejects.toThrow(/keyed/);
	});

	it("publishes a signed checkpoint of the head; verify starts from it and checks only what follows", async () => {
		await append(5);
		const cp = await auditService().checkpoint();
		expect(cp?.cp.seq).toBe(await headSeq());
		await append(3);
		const inc = await verify();
		expect(inc).toMatchObject({ ok: true, mode: "incremental", broken: [], checkpoint: { seq: cp!.cp.seq } });
		expect(inc.rows).toBe(3);
		const full = await verify(true);
		expect(full).toMatchObject({ ok: true, mode: "full", broken: [] });
		expect(full.rows).toBe(await headSeq());
	});

	it("reports a deleted tail: rows after the last checkpoint's seq missing", async () => {
		await append(4);
		const cp = (await auditService().checkpoint())!.cp.seq;
		await tamperThenRestore(`DELETE FROM audit_log WHERE seq > ${cp - 3}`, async () => {
			for (const mode of [false, true]) {
				const res = await verify(mode);
				expect(res.ok).toBe(false);
				expect(res.broken).toContainEqual({ seq: cp - 2, reason: expect.stringMatching(/missing: the log ends before checkpoint/) });
			}
		});
		expect((await verify()).ok).toBe(true);
	});

	it("reports a row edited with every hash after it recomputed, unkeyed (the owner has no key)", async () => {
		await auditService().checkpoint();
		await append(6);
		const victim = (await headSeq()) - 3;
		await tamperThenRestore(`
			UPDATE audit_log SET outcome = 'edited' WHERE seq = ${victim};
			DO $$ DECLARE r record; prev char(64); BEGIN
				SELECT hash INTO prev FROM audit_log WHERE seq = ${victim - 1};
				FOR r IN SELECT seq FROM audit_log WHERE seq >= ${victim} ORDER BY seq LOOP
					UPDATE audit_log SET key_id = NULL, prev_hash = prev WHERE seq = r.seq;
					UPDATE audit_log a SET hash = audit_row_hash(a) WHERE seq = r.seq RETURNING hash INTO prev;
				END LOOP;
			END $$`, async () => {
			for (const mode of [false, true]) {
				const res = await verify(mode);
				expect(res.ok).toBe(false);
				expect(res.broken[0]).toEqual({ seq: victim, reason: "row changed" });
			}
			// Nor does the audit service sign a head that does not verify.
			expect(await auditService().checkpoint()).toBeNull();
		});
		expect((await verify(true)).ok).toBe(true);
	});

	it("reports a truncated table", async () => {
		await append(2);
		await auditService().checkpoint();
		await tamperThenRestore("DELETE FROM audit_log", async () => {
			for (const mode of [false, true]) {
				const res = await verify(mode);
				expect(res.ok).toBe(false);
				expect(res.head).toBe(0);
				expect(res.broken).toContainEqual({ seq: 1, reason: expect.stringMatching(/empty.*truncated/) });
			}
		});
		expect((await verify()).ok).toBe(true);
	});

	it("publishes a checkpoint of the head when an audit node stops", async () => {
		const logger: any = brokerConfig.logger;
		const extra = new ServiceBroker({ ...brokerConfig, namespace: mesh.namespace, nodeID: `audit-extra-${Date.now()}`, logger: { ...logger, options: { ...logger.options, level: "warn" } } });
		extra.createService(AuditService);
		await extra.start();
		await extra.call("audit.append", { action: "test.shutdown", outcome: "ok" });
		const head = await headSeq();
		await extra.stop();
		const nc = await connect(natsOptions());
		try {
			const last = await (await nc.jetstreamManager()).streams.getMessage(channel(mesh.namespace, "auditCheckpoints").name, { last_by_subj: channel(mesh.namespace, "auditCheckpoints").subject });
			expect(JSON.parse(JSON.parse(Buffer.from(last.data).toString()).payload)).toMatchObject({ seq: head, node: extra.nodeID });
		} finally {
			await nc.close();
		}
		expect(await verify()).toMatchObject({ ok: true, checkpoint: { seq: head } });
	});

	it("makes one checkpoint at a time, however long one takes (overlapping ones took every connection of the pool)", async () => {
		const logger: any = brokerConfig.logger;
		const every = config.auditCheckpointSeconds;
		config.auditCheckpointSeconds = 1;
		const extra = new ServiceBroker({ ...brokerConfig, namespace: mesh.namespace, nodeID: `audit-slow-${Date.now()}`, logger: { ...logger, options: { ...logger.options, level: "warn" } } });
		extra.createService(AuditService);
		try {
			await extra.start();
		} finally {
			config.auditCheckpointSeconds = every;
		}
		// A checkpoint that takes 2.5 s, as a first one verifying a long chain does.
		const service = extra.getLocalService("audit") as unknown as { checkpoint(): Promise<null> };
		let running = 0, most = 0, made = 0;
		service.checkpoint = async () => {
			made++;
			most = Math.max(most, ++running);
			await new Promise(r => setTimeout(r, 2500));
			running--;
			return null;
		};
		await new Promise(r => setTimeout(r, 4600));
		await extra.stop();
		expect(most).toBe(1);
		expect(made).toBeGreaterThanOrEqual(2);
	});

	it("reports a forged checkpoint and a replayed one, and keeps checking from the last good one", async () => {
		await append(2);
		const good = (await auditService().checkpoint())!;
		const { subject, name } = channel(mesh.namespace, "auditCheckpoints");
		const nc = await connect(natsOptions());
		try {
			const jsm = await nc.jetstreamManager();
			// A checkpoint signed by another key, naming a head before the real one (to hide the rows after it).
			const other = generateKeyPairSync("ed25519").privateKey;
			const forged = signCheckpoint({ ...good.cp, seq: good.cp.seq - 1, prevSeq: good.streamSeq, prevDigest: "" }, other);
			await nc.jetstream().publish(subject, JSON.stringify(forged));
			let res = await verify();
			expect(res.ok).toBe(false);
			expect(res.broken).toContainEqual({ seq: 0, reason: `checkpoint message ${good.streamSeq + 1} forged or altered` });
			// A genuine older checkpoint put back at the end: signed, but out of its place in the chain.
			const older = await jsm.streams.getMessage(name, { seq: good.streamSeq - 1 });
			await nc.jetstream().publish(subject, older.data);
			res = await verify(true);
			expect(res.ok).toBe(false);
			const olderSeq = JSON.parse(JSON.parse(Buffer.from(older.data).toString()).payload).seq;
			expect(res.broken).toContainEqual({ seq: olderSeq, reason: `checkpoint message ${good.streamSeq + 2} out of its chain (replayed or replaced)` });
			expect(res.checkpoint.seq).toBe(good.cp.seq);
			// Nobody deletes either from the stream: it refuses deletes.
			await expect(jsm.streams.deleteMessage(name, good.streamSeq + 1)).rejects.toThrow();
		} finally {
			await nc.close();
		}
	});
});
