import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomCpf } from "../../lib/cpf";
import { BASE_A_MESH, api, startMesh, type Mesh } from "../support/mesh";
import { ownerQuery } from "../support/db";
import ConsumersService from "../../services/consumers.service";
import { PURPOSE_CODES } from "../../lib/purposes";

// consumers: API keys (POST /consumers, DELETE /consumers/:id), stored only as hashes. What the gateway
// does with a key (401, 403, rate limits) is tested in api.test.ts.
let mesh: Mesh;
let cpf: string;
beforeAll(async () => {
	mesh = await startMesh(BASE_A_MESH);
	cpf = randomCpf();
	await api(mesh, "POST", "/api/v1/persons", { body: { cpf, nome: "Cliente Teste", endereco: "Rua E, 5" } });
});
afterAll(async () => {
	await mesh?.stop();
});

describe("consumers", () => {
	it("issues a key shown once, stores only its hash, and revokes it at once", async () => {
		const created = await api(mesh, "POST", "/api/v1/consumers", { body: { name: "parceiro", scopes: ["persons:read"] } });
		expect(created.status).toBe(201);
		expect(created.body.key).toMatch(/^cm_[A-Za-z0-9_-]{43}$/);
		expect((await api(mesh, "GET", `/api/v1/persons/${cpf}`, { key: created.body.key })).status).toBe(200);

		expect((await api(mesh, "DELETE", `/api/v1/consumers/${created.body.id}`)).status).toBe(204);
		expect((await api(mesh, "GET", `/api/v1/persons/${cpf}`, { key: created.body.key })).status).toBe(401);
		// Idempotent: revoking again succeeds and changes nothing (schemathesis replayed an idempotent POST, then DELETE).
		const [{ revoked_at: revokedAt }] = await ownerQuery("SELECT revoked_at FROM consumers WHERE id = $1", [created.body.id]);
		expect((await api(mesh, "DELETE", `/api/v1/consumers/${created.body.id}`)).status).toBe(204);
		expect((await ownerQuery("SELECT revoked_at FROM consumers WHERE id = $1", [created.body.id]))[0].revoked_at).toEqual(revokedAt);
		expect((await api(mesh, "DELETE", "/api/v1/consumers/6f1c1f8e-4a53-4c1e-9a4e-0d1b2a3c4d5e")).status).toBe(404);
	});

	it("never stores a new key for an Idempotency replay: the replay names the consumer, without its key", async () => {
		const headers = { "idempotency-key": `consumer-${randomCpf()}` };
		const first = await api(mesh, "POST", "/api/v1/consumers", { body: { name: "uma vez", scopes: ["persons:read"] }, headers });
		expect(first.status).toBe(201);
		expect(first.body.key).toMatch(/^cm_/);
		const replay = await api(mesh, "POST", "/api/v1/consumers", { body: { name: "uma vez", scopes: ["persons:read"] }, headers });
		expect(replay.status).toBe(201);
		expect(replay.body).toMatchObject({ id: first.body.id });
		expect(replay.body.key).toBeUndefined();
	});

	it("never brings back a revoked bootstrap admin key when the service starts again", async () => {
		const admin = "00000000-0000-4000-8000-000000000001";
		await ownerQuery("UPDATE consumers SET revoked_at = now() WHERE id = $1", [admin]);
		try {
			const consumers = mesh.broker("consumers");
			await consumers.destroyService(consumers.getLocalService("consumers")!);
			await consumers.createService(ConsumersService);
			await consumers.waitForServices("consumers");
			const [row] = await ownerQuery("SELECT revoked_at FROM consumers WHERE id = $1", [admin]);
			expect(row.revoked_at).not.toBeNull();
		} finally {
			await ownerQuery("UPDATE consumers SET revoked_at = NULL WHERE id = $1", [admin]);
		}
	});

	it("refuses unknown scopes", async () => {
		const res = await api(mesh, "POST", "/api/v1/consumers", { body: { name: "x", scopes: ["root"] } });
		expect(res.status).toBe(422);
	});
	it("limits a key to some purposes, at creation and by PATCH, and the change holds at once; 400 without or with an unknown purpose", async () => {
		const created = await api(mesh, "POST", "/api/v1/consumers", { body: { name: "cobradora", scopes: ["persons:read"], purposes: ["cobranca"] } });
		expect(created.status).toBe(201);
		expect(created.body.purposes).toEqual(["cobranca"]);
		const key = created.body.key;
		const lookup = (finalidade: string | null) => api(mesh, "GET", `/api/v1/persons/${cpf}`, { key, finalidade });
		expect((await lookup("cobranca")).status).toBe(200);
		const refused = await lookup("concessao_credito");
		expect(refused.status).toBe(403);
		expect(refused.body).toMatchObject({ name: "PurposeNotAllowedError", code: 403, type: "PURPOSE_NOT_ALLOWED", data: { allowed: ["cobranca"] } });
		expect(await lookup(null)).toMatchObject({ status: 400, body: { code: 400, type: "PURPOSE_REQUIRED" } });
		expect(await lookup("curiosidade")).toMatchObject({ status: 400, body: { code: 400, type: "PURPOSE_UNKNOWN" } });
		// Refused consultations are audited as such (forbidden / invalid), not as reads.
		const outcomes = await ownerQuery<{ outcome: string }>("SELECT outcome FROM audit_log WHERE consumer = $1 AND action = 'cpf-lookup.get' ORDER BY seq", [created.body.id]);
		expect(outcomes.map(o => o.outcome)).toEqual(["ok", "forbidden", "invalid", "invalid"]);

		// Widened: the gateway's cached token gives way at once.
		const changed = await api(mesh, "PATCH", `/api/v1/consumers/${created.body.id}`, { body: { purposes: ["cobranca", "concessao_credito"] } });
		expect(changed.status).toBe(200);
		expect(changed.body).toMatchObject({ id: created.body.id, purposes: ["cobranca", "concessao_credito"] });
		expect(changed.body.key).toBeUndefined();
		expect((await lookup("concessao_credito")).status).toBe(200);
		expect((await ownerQuery("SELECT purposes FROM consumers WHERE id = $1", [created.body.id]))[0].purposes).toEqual(["cobranca", "concessao_credito"]);

		expect((await api(mesh, "PATCH", `/api/v1/consumers/${created.body.id}`, { body: { purposes: ["curiosidade"] } })).status).toBe(422);
		expect((await api(mesh, "PATCH", `/api/v1/consumers/${created.body.id}`, { body: { purposes: [] } })).status).toBe(422);
		expect((await api(mesh, "PATCH", "/api/v1/consumers/6f1c1f8e-4a53-4c1e-9a4e-0d1b2a3c4d5e", { body: { purposes: ["cobranca"] } })).status).toBe(404);
		expect((await api(mesh, "POST", "/api/v1/consumers", { body: { name: "x", scopes: ["persons:read"], purposes: ["curiosidade"] } })).status).toBe(422);
		// Without purposes, a new key may state any of the list.
		const open = await api(mesh, "POST", "/api/v1/consumers", { body: { name: "aberta", scopes: ["persons:read"] } });
		expect(open.body.purposes).toEqual(PURPOSE_CODES);
	});
});
