import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomCpf } from "../../lib/cpf";
import { BASE_A_MESH, BASE_B_SERVICES, api, startMesh, type Mesh } from "../support/mesh";
import { seedPayloadB } from "../support/profiles";

// asset-score: the explainable score of a profile (GET /profiles/:cpf/score). The score's arithmetic is
// tested without a mesh in test/lib/base-b/score.test.ts; its audit rows and Base B's outage in profiles.test.ts.
let mesh: Mesh;
beforeAll(async () => {
	mesh = await startMesh([...BASE_A_MESH, ...BASE_B_SERVICES]);
});
afterAll(async () => {
	await mesh?.stop();
});

describe("score", () => {
	it("scores a profile with reasons, and answers 404 for an unknown CPF", async () => {
		const cpf = randomCpf();
		await api(mesh, "PUT", `/api/v1/profiles/${cpf}`, { body: seedPayloadB });
		const score = await api(mesh, "GET", `/api/v1/profiles/${cpf}/score`);
		expect(score.status).toBe(200);
		expect(score.body.cpf).toBe(cpf);
		expect(score.body.score).toBeGreaterThanOrEqual(0);
		expect(score.body.score).toBeLessThanOrEqual(1000);
		expect(score.body.reasons.map((r: any) => r.code)).toEqual(["ASSETS_PAID_OFF", "ASSETS_FINANCED", "POSSESSION_TIME", "INCOME_SOURCE", "AGE"]);
		expect(score.body.score).toBe(300 + score.body.reasons.reduce((s: number, r: any) => s + r.points, 0));
		const missing = randomCpf();
		expect((await api(mesh, "GET", `/api/v1/profiles/${missing}/score`)).status).toBe(404);
	});

	it("refuses a CPF that is not one", async () => {
		expect((await api(mesh, "GET", "/api/v1/profiles/x/score")).status).toBe(422);
	});
});
