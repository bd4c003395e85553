import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { enginesEnv } from "../../bench/lib/engines";
import { formatCpf, randomCpf } from "../../lib/cpf";
import { formatDate } from "../../lib/dates";
import { consumerToken } from "../../middlewares/zero-trust.middleware";
import { activitySubject } from "../support/keys";
import { api, eventually, FULL_MESH, startMesh, type Mesh } from "../support/mesh";
import { countMovements } from "../support/es";
import { bySubject, postNdjson, postTransactions } from "../support/transactions";

// The split of Base C (docs/base-c.md, "Who holds what"), attacked: group base-c, which holds
// Elasticsearch's credential, runs here in a process of its own with only its group's settings, as its
// container does in the stack (no pseudonym key), while the rest of the mesh runs as usual. Everything
// the API does with Base C goes through it (ingest, payload C, movements, report, score, batch score,
// consultations, LGPD access and erasure); afterwards the test reads every call and every channel
// message that reached that process and finds no CPF in them. Whoever takes it gets pseudonyms only.
const ROOT = process.cwd();
const STORE = ["transaction-writer", "activity"];
let mesh: Mesh;
let child: ChildProcess;
let dir: string;
let recordFile: string;
let started: { started: boolean; pseudonymKey: boolean; elasticsearch: boolean };

beforeAll(async () => {
	// Every service but base-c's, in this process (as startMesh runs them: one broker each).
	mesh = await startMesh(FULL_MESH.filter(s => !STORE.includes(s.name!)));
	dir = mkdtempSync(join(tmpdir(), "base-c-node-"));
	recordFile = join(dir, "seen.ndjson");
	// base-c's settings, as the stack gives them: its NATS user and key, Elasticsearch, and no pseudonym key.
	const env: NodeJS.ProcessEnv = { ...process.env, ...enginesEnv(ROOT, "test --group base-c"), MESH_KEYS: "", LOG_LEVEL: "error" };
	delete env.PSEUDONYM_KEY;
	delete env.PSEUDONYM_KEY_FILE;
	child = spawn("node_modules/.bin/tsx", ["test/support/base-c-node.ts", mesh.namespace, recordFile], { cwd: ROOT, env, stdio: ["ignore", "pipe", "inherit"] });
	started = await new Promise((resolve, reject) => {
		let out = "";
		child.stdout!.on("data", d => {
			out += d;
			if (out.includes("\n")) resolve(JSON.parse(out.split("\n")[0]));
		});
		child.once("exit", code => reject(new Error(`base-c-node exited (${code}) before it started`)));
	});
	await mesh.broker("api").waitForServices(STORE, 30_000);
}, 120_000);

afterAll(async () => {
	if (child && child.exitCode === null) {
		const gone = new Promise(r => child.once("exit", r));
		child.kill("SIGTERM");
		await gone;
	}
	await mesh?.stop();
	if (dir) rmSync(dir, { recursive: true, force: true });
});

/** What reached the base-c process: calls (params, meta) and channel deliveries. */
const seen = (): { kind: string; action?: string; channel?: string; params?: any; meta?: any; data?: any }[] =>
	existsSync(recordFile) ? readFileSync(recordFile, "utf8").split("\n").filter(Boolean).map(l => JSON.parse(l)) : [];

describe("base-c, as an attacker who takes its container finds it", () => {
	it("runs and serves with no pseudonym key, and never receives a CPF, whatever the API is asked", async () => {
		expect(started).toEqual({ started: true, pseudonymKey: false, elasticsearch: true });
		const cpf = randomCpf();
		const other = randomCpf();
		const forms = (c: string) => [c, formatCpf(c)];

		expect((await api(mesh, "POST", "/api/v1/persons", { body: { cpf, nome: "Alvo Dividido", endereco: "Rua S, 2" } })).status).toBe(201);
		// Movements in: JSON (one formatted CPF) and NDJSON.
		expect((await postTransactions(mesh, [{ cpf: formatCpf(cpf), tipo: "cartao", valor: 12.5, data: "02/01/2025" }, { cpf, tipo: "pix", valor: 3, data: "2025-01-03", id: "p-1" }])).status).toBe(202);
		expect((await postNdjson(mesh, [JSON.stringify({ cpf: other, tipo: "ted", valor: 9, data: "2025-01-04" })])).status).toBe(202);
		await eventually(() => countMovements(bySubject(cpf)), n => n === 2);
		await eventually(() => countMovements(bySubject(other)), n => n === 1);
		// A consultation (Base A), then payload C and the movements by CPF: answered with the CPF put back.
		expect((await api(mesh, "GET", `/api/v1/persons/${cpf}`)).status).toBe(200);
		const payload = await eventually(() => api(mesh, "GET", `/api/v1/activity/${cpf}`), r => r.status === 200 && r.body.ultimaConsulta !== null);
		expect(payload.body).toMatchObject({ cpf, ultimaCompraCC: { data: "02/01/2025", valor: 12.5 } });
		expect(payload.body.movimentacaoFinanceira).toHaveLength(2);
		const page = await api(mesh, "GET", `/api/v1/activity/${formatCpf(cpf)}/movements?tipo=pix`);
		expect(page.status).toBe(200);
		expect(page.body).toMatchObject({ cpf, total: 1, movements: [{ tipo: "pix", valor: 3, data: formatDate("2025-01-03") }] });
		// The report's and the score's Base C parts, one and many.
		const report = await api(mesh, "GET", `/api/v1/reports/${cpf}`);
		expect(report.body.baseC).toMatchObject({ status: "ok", data: { cpf, ultimaCompraCC: { valor: 12.5 } } });
		const score = await api(mesh, "GET", `/api/v1/scores/${cpf}`);
		expect(score.status).toBe(200);
		expect(score.body.missing ?? []).not.toContain("movements");
		const batch = await api(mesh, "POST", "/api/v1/scores/batch", { body: [cpf, other] });
		expect(batch.status).toBe(200);
		// LGPD: the consultations, the access export, then the erasure, which still empties Base C.
		expect((await api(mesh, "GET", `/api/v1/consultations/${cpf}`)).status).toBe(200);
		const access = await api(mesh, "GET", `/api/v1/privacy/${cpf}`);
		expect(access.body.baseC.movements).toHaveLength(2);
		expect((await api(mesh, "DELETE", `/api/v1/privacy/${cpf}`)).body).toMatchObject({ cpf, status: "erased", bases: { C: "erased" } });
		expect(await countMovements(bySubject(cpf))).toBe(0);
		expect((await api(mesh, "GET", `/api/v1/activity/${cpf}`)).status).toBe(404);

		// What base-c saw: every Base C action the API needs, by pseudonym, and the channels' messages.
		const entries = await eventually(async () => seen(), e => e.some(x => x.channel === "consultations"), 10_000);
		const actions = new Set(entries.filter(e => e.kind === "call").map(e => e.action));
		for (const a of ["activity.get", "activity.movements", "activity.movementStats", "activity.consultationStats", "activity.scoreStatsMany", "activity.consultations", "activity.export", "activity.erase"]) {
			expect(actions, a).toContain(a);
		}
		expect(entries.filter(e => e.kind === "delivery").map(e => e.channel)).toEqual(expect.arrayContaining(["transactions", "consultations"]));
		expect(entries.find(e => e.action === "activity.get")?.params).toEqual({ subject: activitySubject(cpf) });
		const everything = JSON.stringify(entries);
		expect(everything).toContain(activitySubject(cpf));
		for (const c of [...forms(cpf), ...forms(other)]) expect(everything, "a CPF reached base-c").not.toContain(c);
		expect(everything).not.toMatch(/"cpfs?"\s*:/);
	}, 180_000);

	it("takes only pseudonyms: a CPF given to its actions is refused (422) before anything is read", async () => {
		const cpf = randomCpf();
		const reader = consumerToken({ id: randomUUID(), name: "reader", scopes: ["activity:read", "score:read"], rateLimit: 60 }, null);
		const front = mesh.broker("activity-front");
		const report = mesh.broker("report");
		for (const [broker, action, params] of [
			[front, "activity.get", { cpf }], [front, "activity.get", { subject: cpf }], [front, "activity.get", { subject: formatCpf(cpf) }],
			[front, "activity.movements", { subject: cpf }], [report, "activity.movementStats", { cpf }],
			[report, "activity.consultationStats", { subject: cpf }], [report, "activity.scoreStatsMany", { subjects: [cpf] }]
		] as const) {
			await expect(broker.call(action, params, { meta: { callerToken: reader } }), `${action} ${JSON.stringify(params)}`).rejects.toMatchObject({ code: 422 });
		}
		// The gateway's group is no longer a caller of base-c's reads: it goes through the front.
		await expect(mesh.broker("api").call("activity.get", { subject: activitySubject(cpf) }, { meta: { callerToken: reader } })).rejects.toMatchObject({ code: 403 });
	});
});
