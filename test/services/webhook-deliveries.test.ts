import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { WebhookVerificationError } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomCpf } from "../../lib/cpf";
import { api, eventually, type Mesh } from "../support/mesh";
import { ownerQuery } from "../support/db";
import { receiverVerifies, startWebhookRig, type WebhookRig } from "../support/webhooks";

// webhook-deliveries, end to end: writes → outbox → JetStream → deliveries → a local receiver, signed
// per Standard Webhooks 1.0 and checked with the specification's npm library (test/support/webhooks.ts).
let rig: WebhookRig;
let mesh: Mesh;
let consumers: WebhookRig["consumers"];
beforeAll(async () => {
	// Retries at most 2 s apart (in production: up to an hour), so that an outage's backlog drains within the test.
	rig = await startWebhookRig([], { backoffBaseMs: 200, backoffMaxMs: 2000 });
	({ mesh, consumers } = rig);
}, 60_000);
afterAll(async () => {
	await rig?.stop();
});

describe("signed deliveries", () => {
	it("delivers a debt event signed per Standard Webhooks; a forged or replayed one fails verification", async () => {
		const sub = await rig.subscribe(consumers.x, "/ok");
		expect(sub.secret).toMatch(/^whsec_/);
		const cpf = await rig.monitoredPerson(consumers.x);
		const debt = await api(mesh, "POST", `/api/v1/persons/${cpf}/dividas`, { key: consumers.x, body: { valor: 10, empresa: "Banco X", dataVencimento: "01/03/2024" } });
		const got = await eventually(async () => rig.arrived("/ok", cpf), r => r.length > 0);
		expect(got).toHaveLength(1);
		const body = JSON.parse(got[0].body);
		expect(body).toMatchObject({ type: "debt.created", data: { cpf, debtId: debt.body.id } });
		expect(got[0].headers["webhook-id"]).toBe(body.id);
		// The specification's own library accepts it …
		expect(receiverVerifies(sub.secret, got[0].headers, got[0].body)).toEqual(body);
		// … and rejects a forgery (the body altered; signed with another secret) and a replay (the same delivery sent again 10 minutes later).
		expect(receiverVerifies(sub.secret, got[0].headers, got[0].body.replace(cpf, randomCpf()))).toBeInstanceOf(WebhookVerificationError);
		expect(receiverVerifies(`whsec_${Buffer.alloc(24, 1).toString("base64")}`, got[0].headers, got[0].body)).toBeInstanceOf(WebhookVerificationError);
		expect(receiverVerifies(sub.secret, got[0].headers, got[0].body, Date.now() + 600_000)).toBeInstanceOf(WebhookVerificationError);
		// A forger who knows the format but not the secret: its own signature over a fresh timestamp.
		const forged = { ...got[0].headers, "webhook-timestamp": String(Math.floor(Date.now() / 1000)), "webhook-signature": `v1,${Buffer.alloc(32, 7).toString("base64")}` };
		expect(receiverVerifies(sub.secret, forged, got[0].body)).toBeInstanceOf(WebhookVerificationError);
		// The subscription's secret is shown once: never listed again, and stored only sealed.
		const listed = await api(mesh, "GET", "/api/v1/monitoring/subscriptions", { key: consumers.x });
		expect(listed.body.subscriptions.find((s: { id: string }) => s.id === sub.id)).not.toHaveProperty("secret");
		const [row] = await ownerQuery("SELECT secret_enc FROM webhook_subscriptions WHERE id = $1", [sub.id]);
		expect(row.secret_enc).toMatch(/^v1\./);
		const [outbox] = await ownerQuery("SELECT data::text AS data, sent_at FROM event_outbox WHERE data->>'debtId' = $1", [debt.body.id]);
		expect(outbox.sent_at).not.toBeNull();
		expect(outbox.data).not.toContain(cpf);
		await api(mesh, "DELETE", `/api/v1/monitoring/subscriptions/${sub.id}`, { key: consumers.x });
	});

	it("retries a failing endpoint until it accepts", async () => {
		rig.failures.set("/flaky", 2);
		const sub = await rig.subscribe(consumers.x, "/flaky", ["person.changed"]);
		const cpf = await rig.monitoredPerson(consumers.x);
		expect((await api(mesh, "PUT", `/api/v1/persons/${cpf}`, { key: consumers.x, body: { nome: "Ana Souza" } })).status).toBe(200);
		const got = await eventually(async () => rig.arrived("/flaky", cpf), r => r.length > 0, 30_000);
		expect(JSON.parse(got[0].body)).toMatchObject({ type: "person.changed", data: { cpf, fields: ["nome"] } });
		const log = await api(mesh, "GET", `/api/v1/monitoring/deliveries?subscriptionId=${sub.id}`, { key: consumers.x });
		expect(log.body.deliveries[0]).toMatchObject({ status: "delivered", attempts: 3, lastStatus: 204 });
		await api(mesh, "DELETE", `/api/v1/monitoring/subscriptions/${sub.id}`, { key: consumers.x });
	}, 40_000);

	it("delivers a CPF's events in order, each once, though the endpoint fails at first", async () => {
		rig.failures.set("/ordered", 3);
		const sub = await rig.subscribe(consumers.x, "/ordered", ["debt.created"]);
		const cpf = await rig.monitoredPerson(consumers.x);
		const ids: string[] = [];
		for (let i = 1; i <= 5; i++) {
			ids.push((await api(mesh, "POST", `/api/v1/persons/${cpf}/dividas`, { key: consumers.x, body: { valor: i, empresa: "Banco", dataVencimento: "01/06/2024" } })).body.id);
		}
		const got = await eventually(async () => rig.arrived("/ordered", cpf), r => r.length >= 5, 40_000);
		expect(got.map(r => JSON.parse(r.body).data.debtId)).toEqual(ids);
		await api(mesh, "DELETE", `/api/v1/monitoring/subscriptions/${sub.id}`, { key: consumers.x });
	}, 50_000);

	it("loses nothing while the receiver is down for 30 s as 1 000 events are written: afterwards each arrives, in order per CPF", async () => {
		const CPFS = 20, PER_CPF = 50, DOWN_MS = 30_000;
		const seen: { cpf: string; debtId: string; id: string }[] = [];
		const receiver = createServer((req, res) => {
			let body = "";
			req.on("data", c => (body += c));
			req.on("end", () => {
				const event = JSON.parse(body);
				seen.push({ cpf: event.data.cpf, debtId: event.data.debtId, id: String(req.headers["webhook-id"]) });
				res.writeHead(200).end();
			});
		});
		await new Promise<void>(r => receiver.listen(0, "127.0.0.1", r));
		const port = (receiver.address() as AddressInfo).port;
		const res = await api(mesh, "POST", "/api/v1/monitoring/subscriptions", { key: consumers.x, body: { url: `http://127.0.0.1:${port}/in`, eventTypes: ["debt.created"] } });
		const cpfs = await Promise.all(Array.from({ length: CPFS }, () => rig.monitoredPerson(consumers.x)));
		await new Promise(r => receiver.close(r)); // the receiver goes away: connections are refused
		const downSince = Date.now();
		// Each CPF's debts one after another (their order is the order to keep), the CPFs side by side.
		const written = new Map<string, string[]>(cpfs.map(cpf => [cpf, []]));
		await Promise.all(cpfs.map(async cpf => {
			for (let i = 0; i < PER_CPF; i++) {
				const debt = await api(mesh, "POST", `/api/v1/persons/${cpf}/dividas`, { key: consumers.x, body: { valor: i + 1, empresa: "Banco", dataVencimento: "01/08/2024" } });
				expect(debt.status).toBe(201);
				written.get(cpf)!.push(debt.body.id);
			}
		}));
		await new Promise(r => setTimeout(r, Math.max(0, DOWN_MS - (Date.now() - downSince))));
		// Down all along: every CPF's first delivery has been tried and refused, none marked delivered.
		const [tried] = await ownerQuery("SELECT count(DISTINCT cpf_bidx)::int AS cpfs, count(*) FILTER (WHERE status = 'delivered')::int AS delivered FROM webhook_deliveries WHERE subscription_id = $1 AND attempts > 0", [res.body.id]);
		expect(tried).toEqual({ cpfs: CPFS, delivered: 0 });
		expect(seen).toEqual([]);
		await new Promise<void>(r => receiver.listen(port, "127.0.0.1", r)); // and comes back
		try {
			await eventually(async () => new Set(seen.map(e => e.id)).size, n => n >= CPFS * PER_CPF, 150_000, 500);
			for (const cpf of cpfs) {
				const firsts = [...new Map(seen.filter(e => e.cpf === cpf).map(e => [e.id, e.debtId])).values()];
				expect(firsts).toEqual(written.get(cpf));
			}
		} finally {
			receiver.closeAllConnections();
			await new Promise(r => receiver.close(r));
			await api(mesh, "DELETE", `/api/v1/monitoring/subscriptions/${res.body.id}`, { key: consumers.x });
		}
	}, 300_000);

	it("does not let an endpoint that never answers delay another subscriber", async () => {
		const hung = await rig.subscribe(consumers.y, "/hang", ["debt.created"]);
		const ok = await rig.subscribe(consumers.x, "/ok", ["debt.created"]);
		const cpf = randomCpf();
		await api(mesh, "POST", "/api/v1/persons", { key: consumers.x, body: { cpf, nome: "Rui Alves", endereco: "Rua B, 2" } });
		for (const key of [consumers.x, consumers.y]) await api(mesh, "POST", "/api/v1/monitoring/cpfs", { key, body: { cpf } });
		await api(mesh, "POST", `/api/v1/persons/${cpf}/dividas`, { key: consumers.x, body: { valor: 5, empresa: "Loja", dataVencimento: "01/04/2024" } });
		await eventually(async () => rig.arrived("/ok", cpf), r => r.length > 0);
		const stuck = await api(mesh, "GET", `/api/v1/monitoring/deliveries?subscriptionId=${hung.id}`, { key: consumers.y });
		expect(stuck.body.deliveries[0]).toMatchObject({ status: "pending" });
		await api(mesh, "DELETE", `/api/v1/monitoring/subscriptions/${hung.id}`, { key: consumers.y });
		await api(mesh, "DELETE", `/api/v1/monitoring/subscriptions/${ok.id}`, { key: consumers.x });
	});
});
