import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomCpf } from "../lib/cpf";
import { api, engines, eventually, startMesh, type Mesh } from "./support/mesh";


let mesh: Mesh;
let cpf: string;
beforeAll(async () => {
	mesh = await startMesh();
	cpf = randomCpf();
	await api(mesh, "POST", "/api/v1/persons", { body: { cpf, nome: "Resiliente Souza", endereco: "Rua G, 7" } });
});
afterAll(async () => {
	await engines("up", "postgres");
	await mesh?.stop();
});

describe("Base A going down and coming back", () => {
	it("answers 503 with Retry-After while PostgreSQL is down, then recovers without a restart", async () => {
		expect((await api(mesh, "GET", `/api/v1/persons/${cpf}`)).status).toBe(200);

		await engines("down", "postgres");
		const read = await api(mesh, "GET", `/api/v1/persons/${cpf}`);
		expect(read.status).toBe(503);
		expect(Number(read.headers.get("retry-after"))).toBeGreaterThan(0);
		expect(JSON.stringify(read.body)).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|5432|SELECT|stack/i);

		const write = await api(mesh, "POST", "/api/v1/persons", { body: { cpf: randomCpf(), nome: "Durante Queda", endereco: "Rua H, 8" } });
		expect(write.status).toBe(503);
		const ready = await api(mesh, "GET", "/health/ready", { key: null });
		expect(ready.status).toBe(503);
		expect(ready.body.bases.A.status).toBe("down");

		await engines("up", "postgres");
		const back = await eventually(() => api(mesh, "GET", `/api/v1/persons/${cpf}`), r => r.status === 200, 30_000, 500);
		expect(back.status).toBe(200);
		expect(back.body.nome).toBe("Resiliente Souza");
		const created = await eventually(
			() => api(mesh, "POST", "/api/v1/persons", { body: { cpf: randomCpf(), nome: "Depois Volta", endereco: "Rua I, 9" } }),
			r => r.status === 201, 15_000, 500);
		expect(created.status).toBe(201);
		expect((await api(mesh, "GET", "/health/ready", { key: null })).status).toBe(200);
	});

	it("answers 503, not 500, for Base B while FerretDB's storage (the same PostgreSQL) restarts", async () => {
		// Found by test/faults.test.ts: FerretDB relays its PostgreSQL going away as a MongoDB InternalError.
		const b = randomCpf();
		const put = await api(mesh, "PUT", `/api/v1/profiles/${b}`, { body: { cpf: b, dataNascimento: "01/01/1980", endereco: "Rua B, 2", fonteDeRenda: "Assalariado", bens: [] } });
		expect(put.status).toBe(201);
		await engines("down", "postgres");
		for (const path of [`/api/v1/profiles/${b}`, `/api/v1/profiles/${b}/score`]) {
			const res = await api(mesh, "GET", path);
			expect(res.status).toBe(503);
			expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
		}
		await engines("up", "postgres");
		const back = await eventually(() => api(mesh, "GET", `/api/v1/profiles/${b}`), r => r.status === 200, 30_000, 500);
		expect(back.status).toBe(200);
	});
});
