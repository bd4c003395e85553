import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatCpf, randomCpf } from "../../lib/cpf";
import { formatDate, todayIso } from "../../lib/dates";
import { api, engines, eventually, startMesh, type Mesh } from "../support/mesh";
import { countMovements } from "../support/es";
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
