import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, eventually, type Mesh } from "../support/mesh";
import { ownerQuery } from "../support/db";
import { startWebhookRig, type WebhookRig } from "../support/webhooks";

// events-relay: Base A's transactional outbox to JetStream (EVENTS), once each; Base B's events as
// intents confirmed after the write (docs/webhooks.md).
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

describe("the outbox relay", () => {
	it("writes an event only with its write: a refused write leaves none", async () => {
		const cpf = await rig.monitoredPerson(consumers.x);
		const debt = await api(mesh, "POST", `/api/v1/persons/${cpf}/dividas`, { key: consumers.x, body: { valor: 3, empresa: "Banco", dataVencimento: "01/07/2024" } });
		const refused = await api(mesh, "PATCH", `/api/v1/persons/${cpf}/dividas/${debt.body.id}`, { key: consumers.y, body: { datePagamento: "2024-07-01" } });
		expect(refused.status).toBe(403);
		const events = await ownerQuery("SELECT type FROM event_outbox WHERE data->>'debtId' = $1 ORDER BY seq", [debt.body.id]);
		expect(events.map(e => e.type)).toEqual(["debt.created"]);
	});

	it("publishes each event once even when a relay died between publishing and marking it sent", async () => {
		const id = randomUUID();
		const event = { id, seq: 0, type: "erased", cpfBidx: "f".repeat(64), at: new Date().toISOString(), data: {} };
		const relay = mesh.broker("events-relay");
		const first = await relay.channels.publish("events", event, id);
		await ownerQuery("INSERT INTO event_outbox (id, type, cpf_bidx, data, namespace) VALUES ($1, 'erased', $2, '{}', $3)", [id, "f".repeat(64), mesh.namespace]);
		const [row] = await eventually(() => ownerQuery("SELECT sent_at FROM event_outbox WHERE id = $1", [id]), r => r[0]?.sent_at);
		expect(row.sent_at).not.toBeNull();
		const again = await relay.channels.publish("events", event, id);
		expect(again.duplicate).toBe(true);
		expect(again.seq).toBe(first.seq);
	});
});

describe("Base B's events (no transactions: an intent in the outbox, confirmed after the write)", () => {
	const profile = { dataNascimento: "1990-01-01", endereco: "Rua P, 9", fonteDeRenda: "Assalariado", bens: [] };
	const relay = () => mesh.broker("events-relay").getLocalService("events-relay") as unknown as { settleIntents(graceMs: number): Promise<{ confirmed: number; discarded: number }> };

	it("delivers profile.changed after a PUT", async () => {
		const sub = await rig.subscribe(consumers.x, "/ok", ["profile.changed"]);
		const cpf = await rig.monitoredPerson(consumers.x);
		expect((await api(mesh, "PUT", `/api/v1/profiles/${cpf}`, { key: consumers.x, body: profile })).status).toBe(201);
		const got = await eventually(async () => rig.arrived("/ok", cpf), r => r.some(x => JSON.parse(x.body).type === "profile.changed"));
		expect(JSON.parse(got[0].body)).toMatchObject({ type: "profile.changed", data: { cpf } });
		await api(mesh, "DELETE", `/api/v1/monitoring/subscriptions/${sub.id}`, { key: consumers.x });
	});

	it("confirms the intent of a write whose node died before confirming, and discards one whose write never happened", async () => {
		const cpf = await rig.monitoredPerson(consumers.x);
		expect((await api(mesh, "PUT", `/api/v1/profiles/${cpf}`, { key: consumers.x, body: profile })).status).toBe(201);
		const profiles = mesh.broker("profiles").getLocalService("profiles") as any;
		const bidx: string = profiles.blindIndex(cpf);
		// As a node dying after its write leaves it: an intent the document names, never confirmed …
		const written = randomUUID();
		await ownerQuery("INSERT INTO event_outbox (id, type, cpf_bidx, data, namespace, ready) VALUES ($1, 'profile.changed', $2, '{}', $3, false)", [written, bidx, mesh.namespace]);
		await profiles.adapter.collection.updateOne({ _id: bidx }, { $set: { lastEventId: written } });
		// … and as one dying before its write: an intent nothing names.
		const never = randomUUID();
		await ownerQuery("INSERT INTO event_outbox (id, type, cpf_bidx, data, namespace, ready) VALUES ($1, 'profile.changed', $2, '{}', $3, false)", [never, bidx, mesh.namespace]);
		await relay().settleIntents(0);
		const rows = await ownerQuery("SELECT id, ready FROM event_outbox WHERE id = ANY($1::uuid[])", [[written, never]]);
		expect(rows).toEqual([{ id: written, ready: true }]);
		await eventually(() => ownerQuery("SELECT sent_at FROM event_outbox WHERE id = $1", [written]), r => r[0]?.sent_at);
	});
});
