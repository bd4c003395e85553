import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomCpf } from "../../lib/cpf";
import { config, need } from "../../config";
import { pseudonymizer } from "../../lib/pii";
import { MODEL_VERSION } from "../../lib/credit-score/scorecard";
import { piiCipher } from "../support/keys";
import { api, engines, eventually, startMesh, type Mesh } from "../support/mesh";

let mesh: Mesh;
const day = (offset: number) => new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10);

/** A person in all three bases: identity, a profile, movements in each of the last six months (card among them). */
async function person(name: string): Promise<string> {
	const cpf = randomCpf();
	expect((await api(mesh, "POST", "/api/v1/persons", { body: { cpf, nome: name, endereco: "Rua S, 1" } })).status).toBe(201);
	expect((await api(mesh, "PUT", `/api/v1/profiles/${cpf}`, { body: { dataNascimento: "01/01/1985", endereco: "Rua S, 1", fonteDeRenda: "Assalariado", bens: [{ tipo: "Casa", inicioPosse: "01/01/2015", quitado: true }] } })).status).toBe(201);
	const movements = Array.from({ length: 12 }, (_, i) => ({ cpf, tipo: i % 2 ? "cartao" : "pix", valor: 1500, data: day(-5 - 15 * i), id: `m${i}` }));
	expect((await api(mesh, "POST", "/api/v1/transactions", { body: movements })).status).toBe(202);
	return cpf;
}
const debt = (cpf: string, valor: number, dataVencimento: string) => api(mesh, "POST", `/api/v1/persons/${cpf}/dividas`, { body: { valor, empresa: "Loja X", dataVencimento } });
const score = (cpf: string) => api(mesh, "GET", `/api/v1/scores/${cpf}`);
const movementsIn = (cpf: string) => eventually(() => score(cpf), r => r.body?.components?.find((c: { code: string }) => c.code === "MOVEMENT_REGULARITY")?.value === 6);

let clean: string;
let indebted: string;
beforeAll(async () => {
	mesh = await startMesh();
	[clean, indebted] = [await person("Sem Dividas"), await person("Com Dividas")];
	expect((await debt(indebted, 2500, day(-100))).status).toBe(201);
	expect((await debt(indebted, 800, day(-20))).status).toBe(201);
	expect((await debt(indebted, 300, day(40))).status).toBe(201);
	await movementsIn(clean);
	await movementsIn(indebted);
});
afterAll(async () => {
	await engines("up", "postgres");
	await engines("up", "mongo");
	await mesh?.stop();
});

describe("credit-score", () => {
	it("scores a person with overdue debts lower than the same person without, and says why in Portuguese", async () => {
		const [a, b] = [await score(clean), await score(indebted)];
		expect(a.status).toBe(200);
		expect(b.status).toBe(200);
		expect(b.body.score).toBeLessThan(a.body.score);
		for (const s of [a.body, b.body]) {
			expect(s).toMatchObject({ model: MODEL_VERSION, score: expect.any(Number), band: expect.stringMatching(/^[A-E]$/), recorded: true });
			expect(Date.now() - Date.parse(s.computedAt)).toBeLessThan(60_000);
			expect(s.missing.map((m: { part: string }) => m.part)).not.toContain("debts");
		}
		const overdue = b.body.components.find((c: { code: string }) => c.code === "OVERDUE_DEBTS");
		expect(overdue).toMatchObject({ value: 2, neutral: false });
		expect(b.body.components.find((c: { code: string }) => c.code === "OVERDUE_AMOUNT").value).toBe(330_000);
		expect(b.body.components.find((c: { code: string }) => c.code === "DAYS_OVERDUE").value).toBe(100);
		// Base C's statistics: 12 movements of R$ 1 500 every 15 days, every other one by card.
		expect(a.body.components.find((c: { code: string }) => c.code === "MOVEMENT_VOLUME").value).toBe(1_800_000);
		expect(a.body.components.find((c: { code: string }) => c.code === "CARD_USE").value).toBe(6);
		expect(b.body.reasons[0]).toEqual({ code: "OVERDUE_DEBTS", pointsLost: expect.any(Number), message: "2 dívidas vencidas em aberto." });
		expect(a.body.reasons.map((r: { code: string }) => r.code)).not.toContain("OVERDUE_DEBTS");
		expect(JSON.stringify(b.body)).not.toContain("Com Dividas");
	});

	it("settling a debt does not lower the score", async () => {
		const cpf = await person("Quita Divida");
		const d = await debt(cpf, 1000, day(-60));
		await movementsIn(cpf);
		const before = (await score(cpf)).body.score;
		expect((await api(mesh, "PATCH", `/api/v1/persons/${cpf}/dividas/${d.body.id}`, { body: { datePagamento: day(-1) } })).status).toBe(200);
		const after = await score(cpf);
		expect(after.body.score).toBeGreaterThan(before);
		expect(after.body.components.find((c: { code: string }) => c.code === "OVERDUE_DEBTS").value).toBe(0);
	});

	it("a person without a profile or movements gets a partial score that names the missing parts", async () => {
		const cpf = randomCpf();
		await api(mesh, "POST", "/api/v1/persons", { body: { cpf, nome: "So Base A", endereco: "Rua T, 2" } });
		const res = await score(cpf);
		expect(res.status).toBe(200);
		expect(res.body.complete).toBe(false);
		expect(res.body.missing).toEqual(expect.arrayContaining([{ part: "assets", reason: "not_found" }, { part: "movements", reason: "no_data" }]));
		expect(res.body.components.find((c: { code: string }) => c.code === "ASSET_SCORE")).toMatchObject({ neutral: true, value: null });
	});

	it("an unknown CPF is 404, a malformed one 422", async () => {
		expect((await score(randomCpf())).status).toBe(404);
		const bad = await score("12345678900");
		expect(bad.status).toBe(422);
		expect(bad.body.type).toBe("VALIDATION_ERROR");
	});

	it("keeps every score: the history grows, newest first, paged, audited", async () => {
		const cpf = await person("Historico");
		await movementsIn(cpf);
		await score(cpf);
		const first = await api(mesh, "GET", `/api/v1/scores/${cpf}/history`);
		expect(first.status).toBe(200);
		const n = first.body.entries.length;
		expect(n).toBeGreaterThanOrEqual(2);
		await score(cpf);
		const page = await api(mesh, "GET", `/api/v1/scores/${cpf}/history?size=1`);
		expect(page.body.entries).toHaveLength(1);
		expect(page.body.entries[0]).toMatchObject({ model: MODEL_VERSION, score: expect.any(Number), components: expect.any(Array) });
		const rest = await api(mesh, "GET", `/api/v1/scores/${cpf}/history?size=100&before=${encodeURIComponent(page.body.next)}`);
		expect(rest.body.entries).toHaveLength(n);
		expect(Date.parse(rest.body.entries[0].computedAt)).toBeLessThan(Date.parse(page.body.entries[0].computedAt));
		const audit = await eventually(() => api(mesh, "GET", `/api/v1/audit?cpf=${cpf}`), r => r.body?.entries?.some((e: { action: string }) => e.action === "score-history.list"));
		const actions = audit.body.entries.map((e: { action: string }) => e.action);
		expect(actions).toEqual(expect.arrayContaining(["credit-score.get", "cpf-lookup.debtSummary", "score-history.list"]));
	});

	it("gives the ML export the latest score's components, under the ML pseudonym", async () => {
		await score(indebted);
		const subject = pseudonymizer(need(config, "pseudonymKey"), "ml")(piiCipher().blindIndex(indebted));
		const text = await (await fetch(`${mesh.url}/api/v1/ml/features`, { headers: { authorization: `Bearer ${mesh.adminKey}` } })).text();
		const row = text.trim().split("\n").map(l => JSON.parse(l)).find(r => r.subject === subject);
		expect(row).toMatchObject({ creditModel: MODEL_VERSION, creditScore: expect.any(Number), creditBand: expect.any(String) });
		expect(row.creditComponents).toMatchObject({ OVERDUE_DEBTS: expect.any(Number), ASSET_SCORE: expect.any(Number) });
		expect(text).not.toContain(indebted);
	});

	it("reads the consultations of the last 90 days by distinct consumers from Base C", async () => {
		const cpf = await person("Consultada");
		const key = (await api(mesh, "POST", "/api/v1/consumers", { body: { name: "outro banco", scopes: ["score:read"] } })).body.key;
		expect((await score(cpf)).status).toBe(200);
		expect((await api(mesh, "GET", `/api/v1/scores/${cpf}`, { key })).status).toBe(200);
		const value = (r: { body?: { components?: { code: string; value: number }[] } }, code: string) => r.body?.components?.find(c => c.code === code)?.value;
		// Movements and consultations both reach Base C through JetStream, each in its own time.
		const later = await eventually(() => score(cpf), r => value(r, "CONSULTING_COMPANIES") === 2 && r.body?.missing?.length === 0);
		expect(value(later, "CONSULTING_COMPANIES")).toBe(2);
		expect(value(later, "RECENT_CONSULTATIONS")).toBeGreaterThanOrEqual(2);
		expect(later.body.missing).toEqual([]);
		expect(later.body.complete).toBe(true);
	});

	it("is in the OpenAPI document: both routes, their scope, the history's paging", async () => {
		const doc = (await api(mesh, "GET", "/openapi.json", { key: null })).body;
		const get = doc.paths["/api/v1/scores/{cpf}"]?.get;
		const history = doc.paths["/api/v1/scores/{cpf}/history"]?.get;
		expect(get.responses["200"].content["application/json"].schema.properties.model).toBeDefined();
		expect(get["x-scope"]).toBe("score:read");
		expect(history["x-scope"]).toBe("score:read");
		expect(history.parameters.map((p: { name: string }) => p.name)).toEqual(expect.arrayContaining(["cpf", "size", "before"]));
	});

	it("a base that is down marks its part unavailable: a partial score, not an error; Base A down is a 503", async () => {
		// Base B (FerretDB) restarts in seconds; Base C down takes the same path (activity.test.ts and report.test.ts stop Elasticsearch).
		await engines("down", "mongo");
		const res = await eventually(() => score(clean), r => r.body?.missing?.some((m: { part: string; reason: string }) => m.part === "assets" && m.reason === "unavailable"), 30_000, 500);
		expect(res.status).toBe(200);
		expect(res.body.complete).toBe(false);
		expect(res.body.recorded).toBe(false);
		expect(res.body.components.find((c: { code: string }) => c.code === "ASSET_SCORE")).toMatchObject({ neutral: true, value: null });
		expect(res.body.components.find((c: { code: string }) => c.code === "OVERDUE_DEBTS").neutral).toBe(false);
		expect(res.body.components.find((c: { code: string }) => c.code === "MOVEMENT_VOLUME").neutral).toBe(false);
		await engines("down", "postgres");
		const none = await eventually(() => score(clean), r => r.status === 503, 30_000, 500);
		expect(none.status).toBe(503);
		expect(none.headers.get("retry-after")).toBeTruthy();
		await engines("up", "postgres");
		await engines("up", "mongo");
		const back = await eventually(() => score(clean), r => r.status === 200 && r.body.missing.length === 0, 60_000, 1000);
		expect(back.body.recorded).toBe(true);
	}, 180_000);
});
