import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomCpf, formatCpf } from "../../lib/cpf";
import { BASE_A_MESH, api, startMesh, type Mesh } from "../support/mesh";
import { expectRefusedAndUnchanged, type BadInputCase } from "../support/bad-input";

// cpf-lookup: payload A of a CPF (GET /persons/:cpf), the person and its debts in one read.
let mesh: Mesh;
beforeAll(async () => {
	mesh = await startMesh(BASE_A_MESH);
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

	it("answers 404 for an unknown CPF", async () => {
		expect((await api(mesh, "GET", `/api/v1/persons/${randomCpf()}`)).status).toBe(404);
	});
});

describe("bad input gets a 4xx and changes nothing", () => {
	const cases: BadInputCase[] = [
		["invalid CPF in the path", "GET", "/api/v1/persons/12345678900", {}, 422],
		["SQL injection in the path", "GET", "/api/v1/persons/1'%20OR%20'1'='1", {}, 422]
	];

	it.each(cases)("%s → %s %s", (_name, method, path, request, status) => expectRefusedAndUnchanged(mesh, method, path, request, status));
});
