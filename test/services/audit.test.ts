import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomCpf } from "../../lib/cpf";
import { api, eventually, startMesh, type Mesh } from "../support/mesh";
import { prometheusReporter } from "../../broker/prometheus.reporter";
import { appQuery, ownerQuery } from "../support/db";
import { piiCipher } from "../support/keys";

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
		// Rows as a release before migration 005 wrote them (the insert trigger chains them).
		for (const action of ["persons.read", "score.read", "debts.create", "privacy.access"]) {
			await ownerQuery("INSERT INTO audit_log (seq, at, consumer, action, cpf_bidx, request_id, outcome, prev_hash, hash) VALUES (0, now(), 'old-release', $1, $2, NULL, 'ok', '', '')", [action, bidx]);
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
		// A log fresh from an empty database may hold a handful of rows: every lookup, found or not, adds one.
		for (let i = 0; i < 15; i++) await api(mesh, "GET", `/api/v1/persons/${randomCpf()}`);
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
