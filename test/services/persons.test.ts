import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomCpf, formatCpf } from "../../lib/cpf";
import { api, startMesh, type Mesh } from "../support/mesh";
import { ownerQuery, snapshot } from "../support/db";

let mesh: Mesh;
beforeAll(async () => {
	mesh = await startMesh();
});
afterAll(async () => {
	await mesh?.stop();
});

describe("payload A over HTTP and NATS", () => {
	it("round-trips the seed payload with its exact field names and DD/MM/YYYY dates", async () => {
		const cpf = randomCpf();
		const created = await api(mesh, "POST", "/api/v1/persons", { body: { cpf: formatCpf(cpf), nome: "Fulano de Tal", endereco: "Rua XXXX, 123 - Centro" } });
		expect(created.status).toBe(201);
		expect(created.body).toEqual({ cpf, nome: "Fulano de Tal", endereco: "Rua XXXX, 123 - Centro" });
		expect(created.headers.get("location")).toBe(`/api/v1/persons/${cpf}`);

		const open = await api(mesh, "POST", `/api/v1/persons/${cpf}/dividas`, { body: { valor: 1234.56, empresa: "Banco X", dataVencimento: "10/01/2024" } });
		expect(open.status).toBe(201);
		const paid = await api(mesh, "POST", `/api/v1/persons/${cpf}/dividas`, { body: { valor: 0.1, empresa: "Loja Y", dataVencimento: "2023-05-31", dataPagamento: "01/06/2023" } });
		expect(paid.status).toBe(201);

		const read = await api(mesh, "GET", `/api/v1/persons/${cpf}`);
		expect(read.status).toBe(200);
		expect(Object.keys(read.body).sort()).toEqual(["cpf", "dividas", "endereco", "nome"]);
		expect(read.body).toMatchObject({ cpf, nome: "Fulano de Tal", endereco: "Rua XXXX, 123 - Centro" });
		expect(read.body.dividas).toEqual([
			{ id: paid.body.id, valor: 0.1, empresa: "Loja Y", dataVencimento: "31/05/2023", datePagamento: "01/06/2023" },
			{ id: open.body.id, valor: 1234.56, empresa: "Banco X", dataVencimento: "10/01/2024", datePagamento: null }
		]);
	});

	it("settles a debt and updates a person", async () => {
		const cpf = randomCpf();
		await api(mesh, "POST", "/api/v1/persons", { body: { cpf, nome: "Maria Souza", endereco: "Av. Brasil, 1000" } });
		const debt = await api(mesh, "POST", `/api/v1/persons/${cpf}/dividas`, { body: { valor: 99.9, empresa: "Operadora Z", dataVencimento: "05/02/2024" } });
		const settled = await api(mesh, "PATCH", `/api/v1/persons/${cpf}/dividas/${debt.body.id}`, { body: { datePagamento: "2024-02-04" } });
		expect(settled.status).toBe(200);
		expect(settled.body.datePagamento).toBe("04/02/2024");

		const updated = await api(mesh, "PUT", `/api/v1/persons/${cpf}`, { body: { endereco: "Rua Nova, 5" } });
		expect(updated.status).toBe(200);
		expect(updated.body).toEqual({ cpf, nome: "Maria Souza", endereco: "Rua Nova, 5" });
		expect((await api(mesh, "GET", `/api/v1/persons/${cpf}`)).body.endereco).toBe("Rua Nova, 5");
	});

	it("answers 404 for an unknown CPF and 409 for a duplicate", async () => {
		const cpf = randomCpf();
		expect((await api(mesh, "GET", `/api/v1/persons/${cpf}`)).status).toBe(404);
		expect((await api(mesh, "POST", `/api/v1/persons/${cpf}/dividas`, { body: { valor: 1, empresa: "A", dataVencimento: "01/01/2024" } })).status).toBe(404);
		expect((await api(mesh, "PUT", `/api/v1/persons/${cpf}`, { body: { nome: "Ana" } })).status).toBe(404);
		await api(mesh, "POST", "/api/v1/persons", { body: { cpf, nome: "Ana Lima", endereco: "Rua A, 1" } });
		const dup = await api(mesh, "POST", "/api/v1/persons", { body: { cpf, nome: "Outra Pessoa", endereco: "Rua B, 2" } });
		expect(dup.status).toBe(409);
		expect(dup.body.type).toBe("PERSON_EXISTS");
	});

	it("replays a write sent twice with the same Idempotency-Key, and refuses the key for another request", async () => {
		const cpf = randomCpf();
		await api(mesh, "POST", "/api/v1/persons", { body: { cpf, nome: "Joao Pereira", endereco: "Rua C, 3" } });
		const body = { valor: 10, empresa: "Banco X", dataVencimento: "01/03/2024" };
		const headers = { "idempotency-key": `debt-${cpf}` };
		const first = await api(mesh, "POST", `/api/v1/persons/${cpf}/dividas`, { body, headers });
		const second = await api(mesh, "POST", `/api/v1/persons/${cpf}/dividas`, { body, headers });
		expect(first.status).toBe(201);
		expect(second.status).toBe(201);
		expect(second.body).toEqual(first.body);
		expect(second.headers.get("location")).toBe(first.headers.get("location"));
		expect((await api(mesh, "GET", `/api/v1/persons/${cpf}`)).body.dividas).toHaveLength(1);
		const other = await api(mesh, "POST", `/api/v1/persons/${cpf}/dividas`, { body: { ...body, valor: 11 }, headers });
		expect(other.status).toBe(409);
		expect(other.body.type).toBe("IDEMPOTENCY_KEY_REUSED");
		const [stored] = await ownerQuery("SELECT response_enc FROM idempotency_keys WHERE key = $1", [`debt-${cpf}`]);
		expect(stored.response_enc).toMatch(/^v1\./);
	});

	it("stores no plaintext CPF, name or address (what a database dump shows)", async () => {
		const cpf = randomCpf();
		await api(mesh, "POST", "/api/v1/persons", { body: { cpf, nome: "Beatriz Quintanilha", endereco: "Travessa Inconfundivel, 77" } });
		await api(mesh, "GET", `/api/v1/persons/${cpf}`);
		const tables = ["persons", "debts", "audit_log", "idempotency_keys", "consumers"];
		for (const table of tables) {
			const rows = await ownerQuery(`SELECT t::text AS row FROM ${table} t`);
			const dump = rows.map(r => r.row).join("\n");
			expect(dump, table).not.toContain(cpf);
			expect(dump, table).not.toContain(formatCpf(cpf));
			expect(dump, table).not.toContain("Quintanilha");
			expect(dump, table).not.toContain("Inconfundivel");
		}
		const [row] = await ownerQuery("SELECT cpf_enc, nome_enc, endereco_enc FROM persons ORDER BY created_at DESC LIMIT 1");
		for (const value of Object.values(row)) expect(value).toMatch(/^v1\.[\w-]+\.[\w-]+$/);
	});
});

describe("bad input gets a 4xx and changes nothing", () => {
	let cpf: string;
	beforeAll(async () => {
		cpf = randomCpf();
		await api(mesh, "POST", "/api/v1/persons", { body: { cpf, nome: "Pessoa Existente", endereco: "Rua D, 4" } });
	});

	const person = { nome: "Fulano", endereco: "Rua A, 1" };
	const debt = { valor: 10, empresa: "Banco", dataVencimento: "01/01/2024" };
	type Case = [string, string, string, { body?: unknown; rawBody?: string; headers?: Record<string, string> }, number];
	const cases: Case[] = [
		["CPF with wrong check digits", "POST", "/api/v1/persons", { body: { cpf: "52998224726", ...person } }, 422],
		["repeated-digit CPF", "POST", "/api/v1/persons", { body: { cpf: "111.111.111-11", ...person } }, 422],
		["CPF too short", "POST", "/api/v1/persons", { body: { cpf: "5299822472", ...person } }, 422],
		["CPF as a number", "POST", "/api/v1/persons", { body: { cpf: 52998224725, ...person } }, 422],
		["invalid CPF in the path", "GET", "/api/v1/persons/12345678900", {}, 422],
		["SQL injection in the path", "GET", "/api/v1/persons/1'%20OR%20'1'='1", {}, 422],
		["SQL injection in nome", "POST", "/api/v1/persons", { body: { cpf: randomCpf(), nome: "Robert'); DROP TABLE persons;--", endereco: "Rua A" } }, 422],
		["SQL injection in endereco", "POST", "/api/v1/persons", { body: { cpf: randomCpf(), nome: "Ana", endereco: "' OR '1'='1" } }, 422],
		["SQL injection in empresa", "POST", "/api/v1/persons/{cpf}/dividas", { body: { ...debt, empresa: "x'; DELETE FROM debts; --" } }, 422],
		["impossible date", "POST", "/api/v1/persons/{cpf}/dividas", { body: { ...debt, dataVencimento: "31/02/2024" } }, 422],
		["malformed date", "POST", "/api/v1/persons/{cpf}/dividas", { body: { ...debt, dataVencimento: "2024/01/31" } }, 422],
		["payment date in the future", "POST", "/api/v1/persons/{cpf}/dividas", { body: { ...debt, datePagamento: "01/01/2199" } }, 422],
		["both payment spellings disagree", "POST", "/api/v1/persons/{cpf}/dividas", { body: { ...debt, datePagamento: "01/01/2024", dataPagamento: "02/01/2024" } }, 422],
		["negative amount", "POST", "/api/v1/persons/{cpf}/dividas", { body: { ...debt, valor: -10 } }, 422],
		["three-decimal amount", "POST", "/api/v1/persons/{cpf}/dividas", { body: { ...debt, valor: 10.001 } }, 422],
		["amount as a string", "POST", "/api/v1/persons/{cpf}/dividas", { body: { ...debt, valor: "10.00" } }, 422],
		["NaN amount (not JSON)", "POST", "/api/v1/persons/{cpf}/dividas", { rawBody: '{"valor": NaN, "empresa": "B", "dataVencimento": "01/01/2024"}', headers: { "content-type": "application/json" } }, 400],
		["NaN amount as a string", "POST", "/api/v1/persons/{cpf}/dividas", { body: { ...debt, valor: "NaN" } }, 422],
		["huge amount", "POST", "/api/v1/persons/{cpf}/dividas", { body: { ...debt, valor: 1e20 } }, 422],
		["unknown field", "POST", "/api/v1/persons", { body: { cpf: randomCpf(), ...person, admin: true } }, 422],
		["unknown field on update", "PUT", "/api/v1/persons/{cpf}", { body: { nome: "Novo Nome", cpf_bidx: "x" } }, 422],
		["empty update", "PUT", "/api/v1/persons/{cpf}", { body: {} }, 422],
		["null for an optional field", "PUT", "/api/v1/persons/{cpf}", { body: { nome: "Novo Nome", endereco: null } }, 422],
		["null payment date", "POST", "/api/v1/persons/{cpf}/dividas", { body: { ...debt, datePagamento: null } }, 422],
		["missing fields", "POST", "/api/v1/persons", { body: { cpf: randomCpf() } }, 422],
		["a JSON array instead of an object", "POST", "/api/v1/persons", { body: [{ cpf: randomCpf(), ...person }] }, 422],
		["malformed JSON", "POST", "/api/v1/persons", { rawBody: '{"cpf": ', headers: { "content-type": "application/json" } }, 400],
		["text/plain body", "POST", "/api/v1/persons", { rawBody: JSON.stringify({ cpf: randomCpf(), ...person }), headers: { "content-type": "text/plain" } }, 415],
		["form body", "POST", "/api/v1/persons", { rawBody: "cpf=52998224725&nome=Ana", headers: { "content-type": "application/x-www-form-urlencoded" } }, 415],
		["no content type", "POST", "/api/v1/persons", { rawBody: JSON.stringify({ cpf: randomCpf(), ...person }) }, 415],
		["oversized body", "POST", "/api/v1/persons", { body: { cpf: randomCpf(), nome: "A".repeat(400_000), endereco: "Rua" } }, 413],
		["name too long", "POST", "/api/v1/persons", { body: { cpf: randomCpf(), nome: "A".repeat(121), endereco: "Rua A" } }, 422],
		["settle with a non-uuid id", "PATCH", "/api/v1/persons/{cpf}/dividas/1%20OR%201=1", { body: { datePagamento: "01/01/2024" } }, 422],
		["settle without a date", "PATCH", "/api/v1/persons/{cpf}/dividas/6f1c1f8e-4a53-4c1e-9a4e-0d1b2a3c4d5e", { body: {} }, 422],
		["bad Idempotency-Key", "POST", "/api/v1/persons", { body: { cpf: randomCpf(), ...person }, headers: { "idempotency-key": "has spaces and ;" } }, 400]
	];

	it.each(cases)("%s → %s %s", async (_name, method, path, opts, status) => {
		const before = await snapshot();
		const res = await api(mesh, method, path.replace("{cpf}", cpf), opts);
		expect(res.status).toBe(status);
		expect(res.body).toMatchObject({ name: expect.any(String), message: expect.any(String), code: status });
		const text = JSON.stringify(res.body);
		expect(text).not.toMatch(/at \w+ \(|node_modules|SELECT|INSERT|sequelize/i);
		expect(await snapshot()).toBe(before);
	});

	it("reports every offending field in data, without echoing the values", async () => {
		const res = await api(mesh, "POST", `/api/v1/persons/${cpf}/dividas`, { body: { valor: -1, empresa: "", dataVencimento: "31/02/2024" } });
		expect(res.status).toBe(422);
		expect([...new Set(res.body.data.map((d: any) => d.field))].sort()).toEqual(["dataVencimento", "empresa", "valor"]);
		expect(JSON.stringify(res.body)).not.toContain("31/02/2024");
		const bad = await api(mesh, "POST", "/api/v1/persons", { body: { cpf: "52998224726", ...person } });
		expect(JSON.stringify(bad.body)).not.toContain("52998224726");
	});
});
