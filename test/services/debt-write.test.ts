import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomCpf } from "../../lib/cpf";
import { BASE_A_MESH, api, startMesh, type Mesh } from "../support/mesh";
import { ownerQuery } from "../support/db";
import { expectRefusedAndUnchanged, type BadInputCase } from "../support/bad-input";

// debt-write: records debts (POST /persons/:cpf/dividas) and settles them (PATCH …/dividas/:id).
// Who may settle whose debt is tested in test/middlewares/zero-trust.test.ts.
let mesh: Mesh;
beforeAll(async () => {
	mesh = await startMesh(BASE_A_MESH);
});
afterAll(async () => {
	await mesh?.stop();
});

describe("debts over HTTP and NATS", () => {
	it("settles a debt", async () => {
		const cpf = randomCpf();
		await api(mesh, "POST", "/api/v1/persons", { body: { cpf, nome: "Maria Souza", endereco: "Av. Brasil, 1000" } });
		const debt = await api(mesh, "POST", `/api/v1/persons/${cpf}/dividas`, { body: { valor: 99.9, empresa: "Operadora Z", dataVencimento: "05/02/2024" } });
		const settled = await api(mesh, "PATCH", `/api/v1/persons/${cpf}/dividas/${debt.body.id}`, { body: { datePagamento: "2024-02-04" } });
		expect(settled.status).toBe(200);
		expect(settled.body.datePagamento).toBe("04/02/2024");
	});

	it("answers 404 for a debt of an unknown CPF", async () => {
		expect((await api(mesh, "POST", `/api/v1/persons/${randomCpf()}/dividas`, { body: { valor: 1, empresa: "A", dataVencimento: "01/01/2024" } })).status).toBe(404);
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
});

describe("bad input gets a 4xx and changes nothing", () => {
	let cpf: string;
	beforeAll(async () => {
		cpf = randomCpf();
		await api(mesh, "POST", "/api/v1/persons", { body: { cpf, nome: "Pessoa Existente", endereco: "Rua D, 4" } });
	});

	const debt = { valor: 10, empresa: "Banco", dataVencimento: "01/01/2024" };
	const cases: BadInputCase[] = [
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
		["null payment date", "POST", "/api/v1/persons/{cpf}/dividas", { body: { ...debt, datePagamento: null } }, 422],
		["settle with a non-uuid id", "PATCH", "/api/v1/persons/{cpf}/dividas/1%20OR%201=1", { body: { datePagamento: "01/01/2024" } }, 422],
		["settle without a date", "PATCH", "/api/v1/persons/{cpf}/dividas/6f1c1f8e-4a53-4c1e-9a4e-0d1b2a3c4d5e", { body: {} }, 422]
	];

	it.each(cases)("%s → %s %s", (_name, method, path, request, status) =>
		expectRefusedAndUnchanged(mesh, method, path.replace("{cpf}", cpf), request, status));

	it("reports every offending field in data, without echoing the values", async () => {
		const res = await api(mesh, "POST", `/api/v1/persons/${cpf}/dividas`, { body: { valor: -1, empresa: "", dataVencimento: "31/02/2024" } });
		expect(res.status).toBe(422);
		expect([...new Set(res.body.data.map((d: any) => d.field))].sort()).toEqual(["dataVencimento", "empresa", "valor"]);
		expect(JSON.stringify(res.body)).not.toContain("31/02/2024");
	});
});
