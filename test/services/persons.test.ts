import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomCpf, formatCpf } from "../../lib/cpf";
import { api, startMesh, type Mesh } from "../support/mesh";
import { ownerQuery } from "../support/db";
import { expectRefusedAndUnchanged, type BadInputCase } from "../support/bad-input";

// persons: registers persons (POST /persons) and changes their name or address (PUT /persons/:cpf).
// Payload A as read back is tested in cpf-lookup.test.ts, debts in debt-write.test.ts.
let mesh: Mesh;
beforeAll(async () => {
	mesh = await startMesh();
});
afterAll(async () => {
	await mesh?.stop();
});

describe("persons over HTTP and NATS", () => {
	it("updates a person", async () => {
		const cpf = randomCpf();
		await api(mesh, "POST", "/api/v1/persons", { body: { cpf, nome: "Maria Souza", endereco: "Av. Brasil, 1000" } });
		const updated = await api(mesh, "PUT", `/api/v1/persons/${cpf}`, { body: { endereco: "Rua Nova, 5" } });
		expect(updated.status).toBe(200);
		expect(updated.body).toEqual({ cpf, nome: "Maria Souza", endereco: "Rua Nova, 5" });
		expect((await api(mesh, "GET", `/api/v1/persons/${cpf}`)).body.endereco).toBe("Rua Nova, 5");
	});

	it("answers 404 for an update of an unknown CPF and 409 for a duplicate", async () => {
		const cpf = randomCpf();
		expect((await api(mesh, "PUT", `/api/v1/persons/${cpf}`, { body: { nome: "Ana" } })).status).toBe(404);
		await api(mesh, "POST", "/api/v1/persons", { body: { cpf, nome: "Ana Lima", endereco: "Rua A, 1" } });
		const dup = await api(mesh, "POST", "/api/v1/persons", { body: { cpf, nome: "Outra Pessoa", endereco: "Rua B, 2" } });
		expect(dup.status).toBe(409);
		expect(dup.body.type).toBe("PERSON_EXISTS");
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
	const cases: BadInputCase[] = [
		["CPF with wrong check digits", "POST", "/api/v1/persons", { body: { cpf: "52998224726", ...person } }, 422],
		["repeated-digit CPF", "POST", "/api/v1/persons", { body: { cpf: "111.111.111-11", ...person } }, 422],
		["CPF too short", "POST", "/api/v1/persons", { body: { cpf: "5299822472", ...person } }, 422],
		["CPF as a number", "POST", "/api/v1/persons", { body: { cpf: 52998224725, ...person } }, 422],
		["SQL injection in nome", "POST", "/api/v1/persons", { body: { cpf: randomCpf(), nome: "Robert'); DROP TABLE persons;--", endereco: "Rua A" } }, 422],
		["SQL injection in endereco", "POST", "/api/v1/persons", { body: { cpf: randomCpf(), nome: "Ana", endereco: "' OR '1'='1" } }, 422],
		["unknown field", "POST", "/api/v1/persons", { body: { cpf: randomCpf(), ...person, admin: true } }, 422],
		["unknown field on update", "PUT", "/api/v1/persons/{cpf}", { body: { nome: "Novo Nome", cpf_bidx: "x" } }, 422],
		["empty update", "PUT", "/api/v1/persons/{cpf}", { body: {} }, 422],
		["null for an optional field", "PUT", "/api/v1/persons/{cpf}", { body: { nome: "Novo Nome", endereco: null } }, 422],
		["missing fields", "POST", "/api/v1/persons", { body: { cpf: randomCpf() } }, 422],
		["a JSON array instead of an object", "POST", "/api/v1/persons", { body: [{ cpf: randomCpf(), ...person }] }, 422],
		["malformed JSON", "POST", "/api/v1/persons", { rawBody: '{"cpf": ', headers: { "content-type": "application/json" } }, 400],
		["text/plain body", "POST", "/api/v1/persons", { rawBody: JSON.stringify({ cpf: randomCpf(), ...person }), headers: { "content-type": "text/plain" } }, 415],
		["form body", "POST", "/api/v1/persons", { rawBody: "cpf=52998224725&nome=Ana", headers: { "content-type": "application/x-www-form-urlencoded" } }, 415],
		["no content type", "POST", "/api/v1/persons", { rawBody: JSON.stringify({ cpf: randomCpf(), ...person }) }, 415],
		["oversized body", "POST", "/api/v1/persons", { body: { cpf: randomCpf(), nome: "A".repeat(400_000), endereco: "Rua" } }, 413],
		["name too long", "POST", "/api/v1/persons", { body: { cpf: randomCpf(), nome: "A".repeat(121), endereco: "Rua A" } }, 422],
		["bad Idempotency-Key", "POST", "/api/v1/persons", { body: { cpf: randomCpf(), ...person }, headers: { "idempotency-key": "has spaces and ;" } }, 400]
	];

	it.each(cases)("%s → %s %s", (_name, method, path, request, status) =>
		expectRefusedAndUnchanged(mesh, method, path.replace("{cpf}", cpf), request, status));

	it("never echoes a refused CPF", async () => {
		const bad = await api(mesh, "POST", "/api/v1/persons", { body: { cpf: "52998224726", ...person } });
		expect(JSON.stringify(bad.body)).not.toContain("52998224726");
	});
});
