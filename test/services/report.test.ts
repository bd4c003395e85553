import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomCpf } from "../../lib/cpf";
import { activitySubject } from "../support/keys";
import { config } from "../../config";
import { api, engines, eventually, startMesh, type Mesh } from "../support/mesh";
import { withEs } from "../support/es";

let mesh: Mesh;
let cpf: string;
beforeAll(async () => {
	mesh = await startMesh();
	cpf = randomCpf();
	await api(mesh, "POST", "/api/v1/persons", { body: { cpf, nome: "Relatorio Completo", endereco: "Rua L, 12" } });
	await api(mesh, "PUT", `/api/v1/profiles/${cpf}`, { body: { dataNascimento: "01/01/1980", endereco: "Rua L, 12", fonteDeRenda: "Assalariado", bens: [] } });
	await api(mesh, "POST", "/api/v1/transactions", { body: { cpf, tipo: "cartao", valor: 10, data: "01/01/2025" } });
	await eventually(() => api(mesh, "GET", `/api/v1/activity/${cpf}`), r => r.status === 200);
});
afterAll(async () => {
	await engines("up", "elasticsearch");
	await mesh?.stop();
});

const consultations = (c: string) => withEs(async es => {
	await es.indices.refresh({ index: `${config.esIndexPrefix}-consultations` });
	return (await es.count({ index: `${config.esIndexPrefix}-consultations`, query: { term: { subject: activitySubject(c) } } })).count;
});

describe("report", () => {
	it("gathers every base and the score, and counts as one consultation", async () => {
		const other = randomCpf();
		await api(mesh, "POST", "/api/v1/persons", { body: { cpf: other, nome: "Contada Uma Vez", endereco: "Rua M, 13" } });
		await api(mesh, "PUT", `/api/v1/profiles/${other}`, { body: { dataNascimento: "01/01/1990", endereco: "Rua M, 13", fonteDeRenda: "Autônomo", bens: [] } });
		const res = await api(mesh, "GET", `/api/v1/reports/${other}`);
		expect(res.status).toBe(200);
		expect(res.body.complete).toBe(true);
		expect(res.body.baseA).toMatchObject({ status: "ok", data: { cpf: other, nome: "Contada Uma Vez" } });
		expect(res.body.baseB).toMatchObject({ status: "ok", data: { fonteDeRenda: "Autônomo" } });
		expect(res.body.score).toMatchObject({ status: "ok", data: { cpf: other } });
		// Base C knew nothing of this CPF before this very consultation.
		expect(res.body.baseC).toEqual({ status: "not_found" });
		await eventually(() => consultations(other), n => n >= 1);
		await new Promise(r => setTimeout(r, 1500));
		expect(await consultations(other)).toBe(1);
	});

	it("returns only the parts the caller's scopes allow", async () => {
		const key = (await api(mesh, "POST", "/api/v1/consumers", { body: { name: "so identidade", scopes: ["reports:read", "persons:read"] } })).body.key;
		const res = await api(mesh, "GET", `/api/v1/reports/${cpf}`, { key });
		expect(res.status).toBe(200);
		expect(res.body.baseA.status).toBe("ok");
		for (const part of ["baseB", "score", "baseC"]) expect(res.body[part]).toEqual({ status: "forbidden" });
		expect(JSON.stringify(res.body)).not.toContain("Assalariado");
	});

	it("marks an unknown CPF's parts not found", async () => {
		const res = await api(mesh, "GET", `/api/v1/reports/${randomCpf()}`);
		expect(res.status).toBe(200);
		for (const part of ["baseA", "baseB", "score", "baseC"]) expect(res.body[part]).toEqual({ status: "not_found" });
	});

	it("still answers when a base is down, marking that part unavailable", async () => {
		await engines("down", "elasticsearch");
		const res = await eventually(() => api(mesh, "GET", `/api/v1/reports/${cpf}`), r => r.body?.baseC?.status === "unavailable", 20_000, 500);
		expect(res.status).toBe(200);
		expect(res.body.complete).toBe(false);
		expect(res.body.baseC).toMatchObject({ status: "unavailable", reason: expect.any(String) });
		expect(res.body.baseA.status).toBe("ok");
		expect(res.body.baseB.status).toBe("ok");
		await engines("up", "elasticsearch");
		const back = await eventually(() => api(mesh, "GET", `/api/v1/reports/${cpf}`), r => r.body?.complete === true, 60_000, 1000);
		expect(back.body.baseC.status).toBe("ok");
		// Elasticsearch takes 10 s to start on a quiet machine, up to a minute on a loaded one.
	}, 150_000);
});
