import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { config } from "../../config";
import { formatCpf, randomCpf } from "../../lib/cpf";
import { activityPseudonym } from "../../lib/base-c/subject";
import { BATCH_MAX_CPFS } from "../../lib/batch";
import { piiCipher } from "../support/keys";
import { ownerQuery } from "../support/db";
import { withEs } from "../support/es";
import { index } from "../../lib/base-c/indices";
import { postBatch, removeProfiles, seedProfiles } from "../support/batch";
import { api, engines, eventually, startMesh, TEST_PURPOSE, type Mesh } from "../support/mesh";

let mesh: Mesh;
const COUNT = BATCH_MAX_CPFS;

/** POST /scores/batch, answered lines parsed. */
const batch = (body: string, contentType = "application/json", headers: Record<string, string> = { finalidade: TEST_PURPOSE }) => postBatch(mesh, "/scores/batch", body, { contentType, headers });

const seeded: string[] = [];
let known: string;
let profileOnly: string;
beforeAll(async () => {
	mesh = await startMesh();
	known = randomCpf();
	profileOnly = randomCpf();
	expect((await api(mesh, "POST", "/api/v1/persons", { body: { cpf: known, nome: "Lote Um", endereco: "Rua L, 1" } })).status).toBe(201);
	expect((await api(mesh, "POST", `/api/v1/persons/${known}/dividas`, { body: { valor: 900, empresa: "Loja Y", dataVencimento: "2020-01-10" } })).status).toBe(201);
	for (const cpf of [known, profileOnly]) {
		expect((await api(mesh, "PUT", `/api/v1/profiles/${cpf}`, { body: { dataNascimento: "01/01/1980", endereco: "Rua L, 1", fonteDeRenda: "Assalariado", bens: [] } })).status).toBe(201);
	}
	seeded.push(...(await seedProfiles(COUNT)));
}, 300_000);
afterAll(async () => {
	await engines("up", "mongo");
	await removeProfiles(seeded);
	await mesh?.stop();
}, 120_000);

describe("POST /scores/batch", () => {
	it("answers one NDJSON line per CPF in input order, invalid and unknown CPFs marked, scores as the single route gives them", async () => {
		const unknown = randomCpf();
		const res = await batch(JSON.stringify([known, "123.456", unknown, formatCpf(profileOnly), { cpf: known }, 42]));
		expect(res.status).toBe(200);
		expect(res.type).toContain("application/x-ndjson");
		expect(res.lines.map(l => [l.index, l.cpf, l.status])).toEqual([
			[0, known, "ok"], [1, "123.456", "invalid"], [2, unknown, "not_found"], [3, profileOnly, "ok"], [4, known, "ok"], [5, null, "invalid"]
		]);
		const single = await api(mesh, "GET", `/api/v1/scores/${known}`);
		expect(res.lines[0].score).toMatchObject({ score: single.body.score, band: single.body.band, model: single.body.model });
		expect(res.lines[0].score.components.find((c: { code: string }) => c.code === "OVERDUE_DEBTS").value).toBe(1);
		expect(res.lines[3].score.missing).toContainEqual({ part: "debts", reason: "not_found" });
		expect(res.text).not.toContain("Lote Um");
	});

	it("takes NDJSON: bare, quoted or {\"cpf\"} lines", async () => {
		const res = await batch(`${known}\n"${profileOnly}"\n\n{"cpf":"${formatCpf(known)}"}\nnot json {\n`, "application/x-ndjson");
		expect(res.lines.map(l => [l.index, l.status])).toEqual([[0, "ok"], [1, "ok"], [2, "ok"], [3, "invalid"]]);
	});

	it("requires an allowed purpose (400 without Finalidade), refuses more than 10 000 CPFs (413) and an empty body (422)", async () => {
		const none = await batch(JSON.stringify([known]), "application/json", {});
		expect(none.status).toBe(400);
		const unknownPurpose = await batch(JSON.stringify([known]), "application/json", { finalidade: "curiosidade" });
		expect(unknownPurpose.status).toBe(400);
		const tooMany = await batch(Array.from({ length: COUNT + 1 }, () => known).join("\n"), "application/x-ndjson");
		expect(tooMany.status).toBe(413);
		expect(tooMany.body.message).toContain("10000");
		expect((await batch("[]")).status).toBe(422);
	});

	it("audits every CPF and counts every scored one as a consultation with its purpose", async () => {
		const unknown = randomCpf();
		const fresh = randomCpf();
		expect((await api(mesh, "PUT", `/api/v1/profiles/${fresh}`, { body: { dataNascimento: "01/01/1990", endereco: "Rua M, 2", fonteDeRenda: "Autônomo", bens: [] } })).status).toBe(201);
		expect((await batch(JSON.stringify([fresh, unknown]))).lines.map(l => l.status)).toEqual(["ok", "not_found"]);
		const trail = async (cpf: string) => (await api(mesh, "GET", `/api/v1/audit?cpf=${cpf}`)).body.entries.filter((e: { action: string }) => e.action === "credit-score.batch");
		expect((await trail(fresh)).map((e: { outcome: string }) => e.outcome)).toEqual(["ok"]);
		expect((await trail(unknown)).map((e: { outcome: string }) => e.outcome)).toEqual(["not_found"]);
		const seen = await eventually(() => api(mesh, "GET", `/api/v1/consultations/${fresh}`, { finalidade: null }), r => r.body?.total === 1);
		expect(seen.body.consultations[0]).toMatchObject({ purpose: TEST_PURPOSE });
		expect((await api(mesh, "GET", "/api/v1/audit/verify")).body.ok).toBe(true);
	});

	it("a base stopped mid-batch marks its parts on the lines after it, and the stream ends whole", async () => {
		const res = await fetch(`${mesh.url}/api/v1/scores/batch`, { method: "POST", headers: { authorization: `Bearer ${mesh.adminKey}`, "content-type": "application/json", finalidade: TEST_PURPOSE }, body: JSON.stringify(seeded) });
		expect(res.status).toBe(200);
		const reader = res.body!.getReader();
		const decoder = new TextDecoder();
		let text = "";
		let stopped: Promise<string> | null = null;
		for (;;) {
			const { done, value } = await reader.read();
			if (done) break;
			text += decoder.decode(value, { stream: true });
			// Base B goes away once the first lines are out.
			stopped ??= engines("down", "mongo");
		}
		await stopped;
		await engines("up", "mongo");
		const lines = text.trim().split("\n").map(l => JSON.parse(l));
		expect(lines.map(l => l.index)).toEqual(seeded.map((_, i) => i));
		expect(lines[0].status).toBe("ok");
		// These CPFs are known to Base B only: with it down nothing is known, and they say so.
		const statuses = new Set(lines.map(l => l.status));
		expect([...statuses].sort()).toEqual(["ok", "unavailable"]);
	}, 240_000);

	it(`scores ${COUNT} CPFs in order, each audited once and counted once`, async () => {
		// A batch must end within its caller token's life (CALLER_TOKEN_SECONDS, 120 s; docs/batch.md). On the
		// shared 2-core test machine at load 20–28 this batch took over 120 s and the chunks past the token's
		// end came back unavailable; this test is about order, audit and consultations, not that limit.
		const tokenSeconds = config.callerTokenSeconds;
		config.callerTokenSeconds = 600;
		onTestFinished(() => {
			config.callerTokenSeconds = tokenSeconds;
		});
		const requestId = `batch-${Date.now()}`;
		const from = new Date().toISOString();
		const res = await batch(JSON.stringify(seeded), "application/json", { finalidade: TEST_PURPOSE, "x-request-id": requestId });
		expect(res.status).toBe(200);
		expect(res.lines).toHaveLength(COUNT);
		res.lines.forEach((l, i) => {
			expect(l.index).toBe(i);
			expect(l.cpf).toBe(seeded[i]);
			expect(l.status).toBe("ok");
		});
		const bidxs = seeded.map(cpf => piiCipher().blindIndex(cpf));
		const [rows] = await ownerQuery(`SELECT count(*)::int AS n, count(DISTINCT cpf_bidx)::int AS d FROM audit_log WHERE action = 'credit-score.batch' AND request_id = $2 AND cpf_bidx = ANY($1::char(64)[])`, [bidxs, requestId]);
		expect(rows).toEqual({ n: COUNT, d: COUNT });
		const subject = activityPseudonym();
		const subjects = seeded.map(subject);
		const counted = () => withEs(async es => (await es.count({ index: index.consultations(), query: { bool: { filter: [{ terms: { subject: subjects } }, { term: { purpose: TEST_PURPOSE } }, { range: { at: { gte: from } } }] } } })).count);
		await eventually(counted, n => n === COUNT, 60_000);
	}, 420_000);
});
