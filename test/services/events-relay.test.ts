import { randomUUID } from "node:crypto";
import { Client } from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { config, need } from "../../config";
import { TEST_PURPOSE, api, eventually, type Mesh } from "../support/mesh";
import { ownerQuery } from "../support/db";
import { startWebhookRig, type WebhookRig } from "../support/webhooks";
import CreditScoreService from "../../services/credit-score.service";
import ScoreHistoryService from "../../services/score-history.service";
import AssetScoreService from "../../services/asset-score.service";
import PrivacyService from "../../services/privacy.service";
import ActivityService from "../../services/activity.service";

// events-relay: Base A's transactional outbox to JetStream (EVENTS), once each; Base B's events as
// intents confirmed after the write; `consulted` with the audit row; nothing of an erased CPF accepted
// before its erasure (docs/webhooks.md).
let rig: WebhookRig;
let mesh: Mesh;
let consumers: WebhookRig["consumers"];
beforeAll(async () => {
	rig = await startWebhookRig([CreditScoreService, ScoreHistoryService, AssetScoreService, ActivityService, PrivacyService]);
	({ mesh, consumers } = rig);
}, 60_000);
afterAll(async () => {
	await rig?.stop();
});

const relay = () => mesh.broker("events-relay").getLocalService("events-relay") as unknown as { settleIntents(graceMs: number): Promise<{ confirmed: number; discarded: number }> };
const bodies = (path: string, cpf: string) => rig.arrived(path, cpf).map(r => JSON.parse(r.body));
const bidxOf = (cpf: string): string => (mesh.broker("profiles").getLocalService("profiles") as any).blindIndex(cpf);

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

describe("consulted: announced with the consultation's audit row", () => {
	it("tells a monitoring consumer of each consultation, with its purpose and whether it was its own, never who else", async () => {
		const sub = await rig.subscribe(consumers.x, "/consulted", ["consulted"]);
		const cpf = await rig.monitoredPerson(consumers.x);
		expect((await api(mesh, "GET", `/api/v1/persons/${cpf}`, { key: consumers.y })).status).toBe(200);
		expect((await api(mesh, "GET", `/api/v1/persons/${cpf}`, { key: consumers.x, finalidade: "cobranca" })).status).toBe(200);
		const got = await eventually(async () => bodies("/consulted", cpf), r => r.length >= 2);
		expect(got.map(b => [b.type, b.data])).toEqual([
			["consulted", { cpf, purpose: TEST_PURPOSE, by: "another-consumer" }],
			["consulted", { cpf, purpose: "cobranca", by: "you" }]
		]);
		// A CPF nobody monitors: its consultations are nobody's events, none is written.
		const other = await rig.monitoredPerson(consumers.y);
		await api(mesh, "GET", `/api/v1/persons/${other}`, { key: consumers.x });
		expect(await ownerQuery("SELECT id FROM event_outbox WHERE type = 'consulted' AND cpf_bidx = $1", [bidxOf(other)])).toEqual([]);
		await api(mesh, "DELETE", `/api/v1/monitoring/subscriptions/${sub.id}`, { key: consumers.x });
	});
});

describe("score.changed: Base B's score history announces a band change through the outbox's intents", () => {
	it("delivers the old and new band when a score's band moves, not when it stays", async () => {
		const sub = await rig.subscribe(consumers.x, "/score", ["score.changed"]);
		const cpf = await rig.monitoredPerson(consumers.x);
		const first = await api(mesh, "GET", `/api/v1/scores/${cpf}`, { key: consumers.x });
		expect(first.body).toMatchObject({ recorded: true });
		expect((await api(mesh, "GET", `/api/v1/scores/${cpf}`, { key: consumers.x })).body.band).toBe(first.body.band);
		for (const valor of [90_000, 70_000, 50_000]) {
			expect((await api(mesh, "POST", `/api/v1/persons/${cpf}/dividas`, { key: consumers.x, body: { valor, empresa: "Banco", dataVencimento: "01/01/2020" } })).status).toBe(201);
		}
		const second = await api(mesh, "GET", `/api/v1/scores/${cpf}`, { key: consumers.x });
		expect(second.body.band).not.toBe(first.body.band);
		const got = await eventually(async () => bodies("/score", cpf), r => r.length > 0);
		expect(got.map(b => [b.type, b.data])).toEqual([["score.changed", { cpf, from: first.body.band, to: second.body.band, model: second.body.model }]]);
		await api(mesh, "DELETE", `/api/v1/monitoring/subscriptions/${sub.id}`, { key: consumers.x });
	}, 60_000);

	it("refuses a subscription to score.changed to a key without score:read", async () => {
		const z = await api(mesh, "POST", "/api/v1/consumers", { body: { name: "monitor-z", scopes: ["monitoring:read", "monitoring:write"] } });
		const res = await api(mesh, "POST", "/api/v1/monitoring/subscriptions", { key: z.body.key, body: { url: `${rig.url}/z`, eventTypes: ["debt.created", "score.changed"] } });
		expect(res.status).toBe(403);
		expect(res.body).toMatchObject({ type: "ERR_MISSING_SCOPE" });
	});

	it("confirms a score intent whose history entry was kept, discards one whose was not", async () => {
		const cpf = await rig.monitoredPerson(consumers.x);
		const bidx = bidxOf(cpf);
		const [kept, lost] = [randomUUID(), randomUUID()];
		for (const id of [kept, lost]) {
			await ownerQuery("INSERT INTO event_outbox (id, type, cpf_bidx, data, namespace, ready) VALUES ($1, 'score.changed', $2, '{}', $3, false)", [id, bidx, mesh.namespace]);
		}
		// As a node dying after keeping the score, before confirming: the entry is named by the event.
		const history = mesh.broker("score-history").getLocalService("score-history") as any;
		await history.history().insertOne({ _id: kept, bidx, at: new Date(), score: 500, band: "C" });
		await relay().settleIntents(0);
		expect(await ownerQuery("SELECT id, ready FROM event_outbox WHERE id = ANY($1::uuid[])", [[kept, lost]])).toEqual([{ id: kept, ready: true }]);
	});
});

describe("erasure: nothing accepted before it is relayed or delivered", () => {
	it("removes the CPF's unsent events and pending deliveries, and sends only its `erased` event", async () => {
		rig.failures.set("/erasure", 1_000_000);
		const sub = await rig.subscribe(consumers.x, "/erasure", ["debt.created", "erased"]);
		const cpf = await rig.monitoredPerson(consumers.x);
		const bidx = bidxOf(cpf);
		// One event relayed, its delivery failing (pending) …
		await api(mesh, "POST", `/api/v1/persons/${cpf}/dividas`, { key: consumers.x, body: { valor: 1, empresa: "Banco", dataVencimento: "01/01/2024" } });
		await eventually(() => ownerQuery("SELECT attempts FROM webhook_deliveries WHERE subscription_id = $1", [sub.id]), r => r[0]?.attempts >= 1);
		// … and one committed but not yet relayed: the relay is held off by holding its lock.
		const holder = new Client({ connectionString: need(config, "postgresOwnerUrl") });
		await holder.connect();
		try {
			await holder.query("BEGIN");
			await holder.query("SELECT pg_advisory_xact_lock(hashtext('event_outbox_relay:' || $1::text))", [mesh.namespace]);
			await api(mesh, "POST", `/api/v1/persons/${cpf}/dividas`, { key: consumers.x, body: { valor: 2, empresa: "Banco", dataVencimento: "01/01/2024" } });
			expect((await ownerQuery("SELECT type FROM event_outbox WHERE cpf_bidx = $1 AND sent_at IS NULL", [bidx])).map(r => r.type)).toEqual(["debt.created"]);
			expect([200, 202]).toContain((await api(mesh, "DELETE", `/api/v1/privacy/${cpf}`)).status);
			expect((await ownerQuery("SELECT type FROM event_outbox WHERE cpf_bidx = $1", [bidx])).map(r => r.type)).toEqual(["erased"]);
			expect(await ownerQuery("SELECT id FROM webhook_deliveries WHERE cpf_bidx = $1", [bidx])).toEqual([]);
		} finally {
			await holder.query("ROLLBACK");
			await holder.end();
		}
		rig.failures.delete("/erasure");
		const got = await eventually(async () => bodies("/erasure", cpf), r => r.length > 0);
		// The fan-out may still read the first debt's event from the stream: the tombstone keeps it out.
		await new Promise(r => setTimeout(r, 1000));
		expect(bodies("/erasure", cpf).map(b => b.type)).toEqual(["erased"]);
		expect(got[0].data).toEqual({ cpf });
		await api(mesh, "DELETE", `/api/v1/monitoring/subscriptions/${sub.id}`, { key: consumers.x });
	});

	it("does not fan out an event of the stream accepted before its CPF's erasure", async () => {
		const sub = await rig.subscribe(consumers.x, "/ok", ["debt.created", "erased"]);
		const cpf = await rig.monitoredPerson(consumers.x);
		const bidx = bidxOf(cpf);
		// An event accepted after the monitor and the subscription, then the CPF's erasure, then an event of a new record.
		await new Promise(r => setTimeout(r, 50));
		const before = new Date().toISOString();
		await new Promise(r => setTimeout(r, 50));
		await ownerQuery("INSERT INTO erasures (cpf_bidx, erased_at) VALUES ($1, now()) ON CONFLICT (cpf_bidx) DO UPDATE SET erased_at = now()", [bidx]);
		const [old, fresh] = [randomUUID(), randomUUID()];
		// Both reach the fan-out from the stream (the old one relayed before the erasure removed its outbox row).
		await mesh.broker("events-relay").channels.publish("events", { id: old, seq: 0, type: "debt.created", cpfBidx: bidx, at: before, data: { debtId: old } }, old);
		await mesh.broker("events-relay").channels.publish("events", { id: fresh, seq: 1, type: "debt.created", cpfBidx: bidx, at: new Date(Date.now() + 1000).toISOString(), data: { debtId: fresh } }, fresh);
		await eventually(() => ownerQuery("SELECT event_id FROM webhook_deliveries WHERE subscription_id = $1 AND cpf_bidx = $2", [sub.id, bidx]), r => r.length > 0);
		expect((await ownerQuery("SELECT event_id FROM webhook_deliveries WHERE subscription_id = $1 AND cpf_bidx = $2", [sub.id, bidx])).map(r => r.event_id)).toEqual([fresh]);
		await api(mesh, "DELETE", `/api/v1/monitoring/subscriptions/${sub.id}`, { key: consumers.x });
	});
});
