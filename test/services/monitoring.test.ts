import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomCpf } from "../../lib/cpf";
import { config } from "../../config";
import { post } from "../../lib/webhooks/send";
import { api, eventually, type Mesh } from "../support/mesh";
import { startWebhookRig, type WebhookRig } from "../support/webhooks";

// monitoring: each consumer's CPF list and webhook subscriptions (POST/GET/DELETE /monitoring/…), and
// the deliveries as each consumer sees them.
let rig: WebhookRig;
let mesh: Mesh;
let consumers: WebhookRig["consumers"];
beforeAll(async () => {
	rig = await startWebhookRig();
	({ mesh, consumers } = rig);
}, 60_000);
afterAll(async () => {
	await rig?.stop();
});

describe("each consumer sees only its own", () => {
	it("hides and protects X's subscriptions, list and deliveries from Y", async () => {
		const sub = await rig.subscribe(consumers.x, "/ok", ["debt.settled"]);
		const cpf = await rig.monitoredPerson(consumers.x);
		const debt = await api(mesh, "POST", `/api/v1/persons/${cpf}/dividas`, { key: consumers.x, body: { valor: 7, empresa: "Banco", dataVencimento: "01/05/2024" } });
		await api(mesh, "PATCH", `/api/v1/persons/${cpf}/dividas/${debt.body.id}`, { key: consumers.x, body: { datePagamento: "2024-05-01" } });
		const mine = await eventually(() => api(mesh, "GET", `/api/v1/monitoring/deliveries?subscriptionId=${sub.id}`, { key: consumers.x }), r => r.body.deliveries?.[0]?.status === "delivered");
		const delivery = mine.body.deliveries[0];
		const y = consumers.y;
		expect((await api(mesh, "GET", "/api/v1/monitoring/subscriptions", { key: y })).body.subscriptions.map((s: { id: string }) => s.id)).not.toContain(sub.id);
		expect((await api(mesh, "GET", `/api/v1/monitoring/deliveries?subscriptionId=${sub.id}`, { key: y })).body.deliveries).toEqual([]);
		expect((await api(mesh, "GET", "/api/v1/monitoring/cpfs", { key: y })).body.cpfs.map((c: { cpf: string }) => c.cpf)).not.toContain(cpf);
		expect((await api(mesh, "POST", `/api/v1/monitoring/deliveries/${delivery.id}/replay`, { key: y, body: {} })).status).toBe(404);
		expect((await api(mesh, "DELETE", `/api/v1/monitoring/subscriptions/${sub.id}`, { key: y })).status).toBe(404);
		expect((await api(mesh, "DELETE", `/api/v1/monitoring/cpfs/${cpf}`, { key: y })).status).toBe(404);
		// X replays its own delivery: it arrives again, with the same webhook-id (deduplicable).
		const before = rig.arrived("/ok", cpf).length;
		expect((await api(mesh, "POST", `/api/v1/monitoring/deliveries/${delivery.id}/replay`, { key: consumers.x, body: {} })).status).toBe(202);
		const again = await eventually(async () => rig.arrived("/ok", cpf), r => r.length > before);
		expect(again[again.length - 1].headers["webhook-id"]).toBe(delivery.eventId);
		await api(mesh, "DELETE", `/api/v1/monitoring/subscriptions/${sub.id}`, { key: consumers.x });
	});
});


describe("bounds", () => {
	it("refuses a CPF past the per-consumer limit, and takes the same CPF twice as once", async () => {
		const max = config.webhooksMonitorsMax;
		const before = (await api(mesh, "GET", "/api/v1/monitoring/cpfs?limit=1000", { key: consumers.y })).body.cpfs.length;
		config.webhooksMonitorsMax = before + 1;
		try {
			const cpf = randomCpf();
			expect((await api(mesh, "POST", "/api/v1/monitoring/cpfs", { key: consumers.y, body: { cpf } })).status).toBe(201);
			expect((await api(mesh, "POST", "/api/v1/monitoring/cpfs", { key: consumers.y, body: { cpf } })).status).toBe(201);
			const over = await api(mesh, "POST", "/api/v1/monitoring/cpfs", { key: consumers.y, body: { cpf: randomCpf() } });
			expect(over.status).toBe(409);
			expect(over.body.type).toBe("MONITOR_LIMIT");
			expect((await api(mesh, "DELETE", `/api/v1/monitoring/cpfs/${cpf}`, { key: consumers.y })).status).toBe(204);
			expect((await api(mesh, "POST", "/api/v1/monitoring/cpfs", { key: consumers.y, body: { cpf } })).status).toBe(201);
		} finally {
			config.webhooksMonitorsMax = max;
		}
	});
});

describe("SSRF", () => {
	it("refuses private, loopback, link-local and metadata targets when the setting is off", async () => {
		config.webhooksAllowPrivate = false;
		try {
			for (const url of ["http://127.0.0.1/x", "http://localhost/x", "http://10.1.2.3/x", "http://192.168.0.1/", "http://169.254.169.254/latest/meta-data", "http://[::1]/", "http://[::ffff:127.0.0.1]/", "ftp://example.com/"]) {
				const res = await api(mesh, "POST", "/api/v1/monitoring/subscriptions", { key: consumers.x, body: { url, eventTypes: ["erased"] } });
				expect(res.status, url).toBe(422);
			}
			// At connection time too: a name resolving to loopback is refused by the guarded lookup.
			const sent = await post(`http://localhost:${new URL(rig.url).port}/ok`, {}, "{}", { allowPrivate: false, httpsOnly: false });
			expect(sent).toMatchObject({ ok: false, error: "EFORBIDDEN" });
		} finally {
			config.webhooksAllowPrivate = true;
		}
	});
});
