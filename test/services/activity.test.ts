import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { config } from "../../config";
import { consumerToken } from "../../middlewares/zero-trust.middleware";
import { activitySubject } from "../support/keys";
import { formatCpf, randomCpf } from "../../lib/cpf";
import { formatDate, todayIso } from "../../lib/dates";
import { api, engines, eventually, startMesh, type Mesh } from "../support/mesh";
import { countMovements, withEs } from "../support/es";
import { enginePid } from "../support/replicas";
import { bySubject, postNdjson, postTransactions } from "../support/transactions";

// activity: payload C (GET /activity/:cpf) and the movements (GET /activity/:cpf/movements), with the
// last consultation kept from the consultations channel. Taking movements in is transaction-ingest.test.ts's.
let mesh: Mesh;
beforeAll(async () => {
	mesh = await startMesh();
});
afterAll(async () => {
	await engines("up", "elasticsearch");
	await mesh?.stop();
});

describe("payload C", () => {
	it("round-trips the seed payload: consultation from Base A, last card purchase, movements newest first", async () => {
		const cpf = randomCpf();
		await api(mesh, "POST", "/api/v1/persons", { body: { cpf, nome: "Consultada Lima", endereco: "Rua K, 11" } });
		expect((await api(mesh, "GET", `/api/v1/persons/${cpf}`)).status).toBe(200);

		const accepted = await postTransactions(mesh, [
			{ cpf: formatCpf(cpf), tipo: "cartao", valor: 150.75, data: "10/01/2025" },
			{ cpf, tipo: "pix", valor: 20, data: "2025-01-12" },
			{ cpf, tipo: "cartao", valor: 99.9, data: "11/01/2025" },
			{ cpf, tipo: "boleto", valor: 0.1, data: "05/01/2025" }
		]);
		expect(accepted.status).toBe(202);
		expect(accepted.body).toEqual({ accepted: 4 });

		const read = await eventually(() => api(mesh, "GET", `/api/v1/activity/${cpf}`),
			r => r.status === 200 && r.body.movimentacaoFinanceira.length === 4 && r.body.ultimaConsulta !== null);
		expect(Object.keys(read.body)).toEqual(["cpf", "ultimaConsulta", "ultimaCompraCC", "movimentacaoFinanceira"]);
		expect(read.body).toEqual({
			cpf,
			ultimaConsulta: formatDate(todayIso()),
			ultimaCompraCC: { data: "11/01/2025", valor: 99.9 },
			movimentacaoFinanceira: [
				{ tipo: "pix", valor: 20, data: "12/01/2025" },
				{ tipo: "cartao", valor: 99.9, data: "11/01/2025" },
				{ tipo: "cartao", valor: 150.75, data: "10/01/2025" },
				{ tipo: "boleto", valor: 0.1, data: "05/01/2025" }
			]
		});
		expect((await api(mesh, "GET", `/api/v1/activity/${randomCpf()}`)).status).toBe(404);
	});

	it("lists movements by date range and tipo, with totals, paged with after", async () => {
		const cpf = randomCpf();
		const lines = Array.from({ length: 30 }, (_, i) => JSON.stringify({ cpf, tipo: i % 3 === 0 ? "cartao" : "pix", valor: 10.05, data: `2024-03-${String(1 + (i % 28)).padStart(2, "0")}`, id: `m${i}` }));
		expect((await postNdjson(mesh, lines)).status).toBe(202);
		await eventually(() => countMovements(bySubject(cpf)), n => n === 30);

		const all = await api(mesh, "GET", `/api/v1/activity/${cpf}/movements?size=100`);
		expect(all.body.total).toBe(30);
		expect(all.body.totals).toEqual({ cartao: { count: 10, valor: 100.5 }, pix: { count: 20, valor: 201 } });

		const ranged = await api(mesh, "GET", `/api/v1/activity/${cpf}/movements?from=10/03/2024&to=2024-03-19&tipo=pix`);
		expect(ranged.body.movements.every((m: any) => m.tipo === "pix" && m.data >= "10/03/2024" && m.data <= "19/03/2024")).toBe(true);
		expect(ranged.body.total).toBe(ranged.body.movements.length);

		const seen: unknown[] = [];
		let after: string | null = null;
		do {
			const page: any = await api(mesh, "GET", `/api/v1/activity/${cpf}/movements?size=7${after ? `&after=${after}` : ""}`);
			expect(page.status).toBe(200);
			seen.push(...page.body.movements);
			after = page.body.next;
		} while (after);
		expect(seen).toHaveLength(30);
		expect((await api(mesh, "GET", `/api/v1/activity/${cpf}/movements?after=bm90LWEtY3Vyc29y`)).status).toBe(422);
		expect((await api(mesh, "GET", `/api/v1/activity/${cpf}/movements?from=2024-03-10&to=2024-03-01`)).status).toBe(422);
		expect((await api(mesh, "GET", `/api/v1/activity/${cpf}/movements?tipo=bitcoin`)).status).toBe(422);
	});
});

describe("Elasticsearch frozen", () => {
	it("answers 503 with Retry-After, not a hang, while Elasticsearch is frozen, and takes movements meanwhile", async () => {
		// Found by test/faults.test.ts: frozen (SIGSTOP), Elasticsearch left GET /activity unanswered for more than 15 s.
		const cpf = randomCpf();
		expect((await postTransactions(mesh, { cpf, tipo: "pix", valor: 3, data: "2025-03-01", id: "frozen-1" })).status).toBe(202);
		expect((await eventually(() => api(mesh, "GET", `/api/v1/activity/${cpf}`), r => r.status === 200, 30_000, 300)).status).toBe(200);
		const pid = await enginePid("elasticsearch");
		process.kill(pid, "SIGSTOP");
		try {
			for (const path of [`/api/v1/activity/${cpf}`, `/api/v1/activity/${cpf}/movements`]) {
				const res = await fetch(mesh.url + path, { headers: { authorization: `Bearer ${mesh.adminKey}` }, signal: AbortSignal.timeout(9000) });
				expect(res.status).toBe(503);
				expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
				expect(((await res.json()) as { code: number }).code).toBe(503);
			}
			expect((await postTransactions(mesh, { cpf, tipo: "pix", valor: 4, data: "2025-03-02", id: "frozen-2" })).status).toBe(202);
		} finally {
			process.kill(pid, "SIGCONT");
		}
		const back = await eventually(() => api(mesh, "GET", `/api/v1/activity/${cpf}`), r => r.status === 200 && r.body.movimentacaoFinanceira.length === 2, 60_000, 500);
		expect(back.body.movimentacaoFinanceira).toHaveLength(2);
	}, 120_000);
});

describe("consultations: who and why (the interface of credit-score)", () => {
	it("keeps the consumer id and the purpose of each consultation, never the CPF", async () => {
		const cpf = randomCpf();
		await api(mesh, "POST", "/api/v1/persons", { body: { cpf, nome: "Consultada Duas Vezes", endereco: "Rua Q, 1" } });
		const keys = await Promise.all(["banco", "financeira"].map(async name => (await api(mesh, "POST", "/api/v1/consumers", { body: { name: `${name} ${randomCpf().slice(0, 4)}`, scopes: ["persons:read"] } })).body));
		for (const k of keys) expect((await api(mesh, "GET", `/api/v1/persons/${cpf}`, { key: k.key, headers: { finalidade: "concessao_credito" } })).status).toBe(200);
		expect((await api(mesh, "GET", `/api/v1/persons/${cpf}`, { key: keys[0].key, headers: { finalidade: "revisao_limite" } })).status).toBe(200);
		const docs = await eventually(() => consultationDocs(cpf), d => d.length === 3);
		expect(docs.map(d => [d.consumer, d.purpose]).sort()).toEqual([
			[keys[0].id, "concessao_credito"], [keys[0].id, "revisao_limite"], [keys[1].id, "concessao_credito"]
		].sort());
		expect(JSON.stringify(docs)).not.toContain(cpf);
	});

	it("consultationStats counts the last 90 days and their distinct consumers, and is no consultation itself", async () => {
		const cpf = randomCpf();
		const subject = activitySubject(cpf);
		const day = 86_400_000;
		const [a, b] = [randomUUID(), randomUUID()];
		// Three consultations inside the window by two consumers, one 100 days ago by a third.
		const docs = [[a, 1], [a, 5], [b, 89], [randomUUID(), 100]].map(([consumer, daysAgo], i) => ({
			consultation_id: `stats-${subject}-${i}`, subject, at: new Date(Date.now() - Number(daysAgo) * day).toISOString(), source: "cpf-lookup", consumer, purpose: "concessao_credito"
		}));
		await withEs(es => es.bulk({ refresh: "wait_for", operations: docs.flatMap(d => [{ create: { _index: `${config.esIndexPrefix}-consultations`, _id: d.consultation_id } }, d]) }));
		// Asked by pseudonym, as report's credit-score asks it (base-c never sees the CPF).
		const stats = () => mesh.broker("report").call("activity.consultationStats", { subject }, { meta: { callerToken: scoreReader } });
		expect(await stats()).toEqual({ consultations90d: 3, distinctConsumers90d: 2 });
		expect(await mesh.broker("report").call("activity.consultationStats", { subject: activitySubject(randomCpf()) }, { meta: { callerToken: scoreReader } })).toEqual({ consultations90d: 0, distinctConsumers90d: 0 });
		// Asked again after a while: still three (the stats themselves are not counted).
		await new Promise(r => setTimeout(r, 1500));
		expect(await stats()).toEqual({ consultations90d: 3, distinctConsumers90d: 2 });
		// The scope is required.
		const noScore = consumerToken({ id: randomUUID(), name: "no score", scopes: ["persons:read"], rateLimit: 60 }, null);
		await expect(mesh.broker("report").call("activity.consultationStats", { subject }, { meta: { callerToken: noScore } })).rejects.toMatchObject({ code: 403 });
	});
});

const scoreReader = consumerToken({ id: randomUUID(), name: "score reader", scopes: ["score:read"], rateLimit: 60 }, null);

/** Base C's consultation documents of a CPF, after a refresh. */
async function consultationDocs(cpf: string): Promise<{ consumer: string; purpose: string | null }[]> {
	return withEs(async es => {
		const target = `${config.esIndexPrefix}-consultations`;
		await es.indices.refresh({ index: target });
		const res = await es.search<{ consumer: string; purpose: string | null }>({ index: target, size: 100, query: { term: { subject: activitySubject(cpf) } } });
		return res.hits.hits.map(h => h._source!);
	});
}
