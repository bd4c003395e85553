import { createHmac, randomUUID, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomCpf } from "../../lib/cpf";
import { config } from "../../config";
import { post } from "../../lib/webhooks/send";
import { BASE_A_MESH, WEBHOOK_SERVICES, api, eventually, startMesh, type Mesh } from "../support/mesh";
import ProfilesService from "../../services/profiles.service";
import { ownerQuery } from "../support/db";

// Monitoring and signed webhooks, end to end: writes → outbox → JetStream → deliveries → a local
// receiver (outside the mesh, on 127.0.0.1). The npm `standardwebhooks` library is not installed, so
// the receiver verifies with its own implementation of Standard Webhooks 1.0 (below), not ours.

interface Received { path: string; headers: IncomingMessage["headers"]; body: string }

/** Standard Webhooks 1.0 verification, written from the specification, independent of lib/webhooks. */
function receiverVerifies(secret: string, h: IncomingMessage["headers"], body: string, nowSeconds = Date.now() / 1000): boolean {
	const id = String(h["webhook-id"]), ts = String(h["webhook-timestamp"]);
	if (Math.abs(nowSeconds - Number(ts)) > 300) return false;
	const want = createHmac("sha256", Buffer.from(secret.split("_")[1], "base64")).update(`${id}.${ts}.${body}`).digest();
	return String(h["webhook-signature"]).split(" ").some(s => {
		const got = Buffer.from(s.replace(/^v1,/, ""), "base64");
		return s.startsWith("v1,") && got.length === want.length && timingSafeEqual(got, want);
	});
}

let mesh: Mesh;
let sink: Server;
let sinkUrl: string;
const received: Received[] = [];
/** Requests each path refuses (503) before it accepts. */
const failures = new Map<string, number>([["/flaky", 2], ["/ordered", 3]]);
const allowPrivate = config.webhooksAllowPrivate;
const consumers: Record<"x" | "y", string> = { x: "", y: "" };

beforeAll(async () => {
	config.webhooksAllowPrivate = true; // the receiver is on loopback
	sink = createServer((req, res) => {
		let body = "";
		req.on("data", c => (body += c));
		req.on("end", () => {
			if (req.url === "/hang") return; // never answers
			const left = failures.get(req.url!) ?? 0;
			if (left > 0) {
				failures.set(req.url!, left - 1);
				return res.writeHead(503).end();
			}
			received.push({ path: req.url!, headers: req.headers, body });
			res.writeHead(204).end();
		});
	});
	await new Promise<void>(r => sink.listen(0, "127.0.0.1", r));
	sinkUrl = `http://127.0.0.1:${(sink.address() as AddressInfo).port}`;
	mesh = await startMesh([...BASE_A_MESH, ...WEBHOOK_SERVICES, ProfilesService]);
	for (const who of ["x", "y"] as const) {
		const c = await api(mesh, "POST", "/api/v1/consumers", { body: { name: `monitor-${who}`, scopes: ["persons:write", "debts:write", "profiles:write", "monitoring:read", "monitoring:write"] } });
		consumers[who] = c.body.key;
	}
}, 60_000);
afterAll(async () => {
	config.webhooksAllowPrivate = allowPrivate;
	await mesh?.stop();
	sink?.closeAllConnections();
	await new Promise(r => sink?.close(r));
});

async function monitoredPerson(key: string): Promise<string> {
	const cpf = randomCpf();
	expect((await api(mesh, "POST", "/api/v1/persons", { key, body: { cpf, nome: "Ana Lima", endereco: "Rua A, 1" } })).status).toBe(201);
	expect((await api(mesh, "POST", "/api/v1/monitoring/cpfs", { key, body: { cpf } })).status).toBe(201);
	return cpf;
}

async function subscribe(key: string, path: string, eventTypes = ["debt.created", "debt.settled", "person.changed"]) {
	const res = await api(mesh, "POST", "/api/v1/monitoring/subscriptions", { key, body: { url: sinkUrl + path, eventTypes } });
	expect(res.status).toBe(201);
	return res.body as { id: string; secret: string };
}

const arrived = (path: string, cpf: string) => received.filter(r => r.path === path && JSON.parse(r.body).data.cpf === cpf);

describe("signed deliveries", () => {
	it("delivers a debt event signed per Standard Webhooks; a forged or replayed one fails verification", async () => {
		const sub = await subscribe(consumers.x, "/ok");
		expect(sub.secret).toMatch(/^whsec_/);
		const cpf = await monitoredPerson(consumers.x);
		const debt = await api(mesh, "POST", `/api/v1/persons/${cpf}/dividas`, { key: consumers.x, body: { valor: 10, empresa: "Banco X", dataVencimento: "01/03/2024" } });
		const got = await eventually(async () => arrived("/ok", cpf), r => r.length > 0);
		expect(got).toHaveLength(1);
		const body = JSON.parse(got[0].body);
		expect(body).toMatchObject({ type: "debt.created", data: { cpf, debtId: debt.body.id } });
		expect(got[0].headers["webhook-id"]).toBe(body.id);
		expect(receiverVerifies(sub.secret, got[0].headers, got[0].body)).toBe(true);
		expect(receiverVerifies(sub.secret, got[0].headers, got[0].body.replace(cpf, randomCpf()))).toBe(false);
		expect(receiverVerifies(sub.secret, got[0].headers, got[0].body, Date.now() / 1000 + 600)).toBe(false);
		expect(receiverVerifies(`whsec_${Buffer.alloc(24, 1).toString("base64")}`, got[0].headers, got[0].body)).toBe(false);
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
		const sub = await subscribe(consumers.x, "/flaky", ["person.changed"]);
		const cpf = await monitoredPerson(consumers.x);
		expect((await api(mesh, "PUT", `/api/v1/persons/${cpf}`, { key: consumers.x, body: { nome: "Ana Souza" } })).status).toBe(200);
		const got = await eventually(async () => arrived("/flaky", cpf), r => r.length > 0, 30_000);
		expect(JSON.parse(got[0].body)).toMatchObject({ type: "person.changed", data: { cpf, fields: ["nome"] } });
		const log = await api(mesh, "GET", `/api/v1/monitoring/deliveries?subscriptionId=${sub.id}`, { key: consumers.x });
		expect(log.body.deliveries[0]).toMatchObject({ status: "delivered", attempts: 3, lastStatus: 204 });
		await api(mesh, "DELETE", `/api/v1/monitoring/subscriptions/${sub.id}`, { key: consumers.x });
	}, 40_000);

	it("delivers a CPF's events in order, each once, though the endpoint fails at first", async () => {
		const sub = await subscribe(consumers.x, "/ordered", ["debt.created"]);
		const cpf = await monitoredPerson(consumers.x);
		const ids: string[] = [];
		for (let i = 1; i <= 5; i++) {
			ids.push((await api(mesh, "POST", `/api/v1/persons/${cpf}/dividas`, { key: consumers.x, body: { valor: i, empresa: "Banco", dataVencimento: "01/06/2024" } })).body.id);
		}
		const got = await eventually(async () => arrived("/ordered", cpf), r => r.length >= 5, 40_000);
		expect(got.map(r => JSON.parse(r.body).data.debtId)).toEqual(ids);
		await api(mesh, "DELETE", `/api/v1/monitoring/subscriptions/${sub.id}`, { key: consumers.x });
	}, 50_000);

	it("loses nothing while the receiver is down: afterwards every event arrives, in order per CPF", async () => {
		const seen: { cpf: string; debtId: string; id: string }[] = [];
		const down = createServer((req, res) => {
			let body = "";
			req.on("data", c => (body += c));
			req.on("end", () => {
				const event = JSON.parse(body);
				seen.push({ cpf: event.data.cpf, debtId: event.data.debtId, id: String(req.headers["webhook-id"]) });
				res.writeHead(200).end();
			});
		});
		await new Promise<void>(r => down.listen(0, "127.0.0.1", r));
		const port = (down.address() as AddressInfo).port;
		const res = await api(mesh, "POST", "/api/v1/monitoring/subscriptions", { key: consumers.x, body: { url: `http://127.0.0.1:${port}/in`, eventTypes: ["debt.created"] } });
		const cpfs = await Promise.all(Array.from({ length: 10 }, () => monitoredPerson(consumers.x)));
		await new Promise(r => down.close(r)); // the receiver goes away: connections are refused
		const written = new Map<string, string[]>();
		await Promise.all(cpfs.map(async cpf => {
			written.set(cpf, []);
			for (let i = 0; i < 20; i++) {
				const debt = await api(mesh, "POST", `/api/v1/persons/${cpf}/dividas`, { key: consumers.x, body: { valor: i + 1, empresa: "Banco", dataVencimento: "01/08/2024" } });
				written.get(cpf)!.push(debt.body.id);
			}
		}));
		await new Promise<void>(r => down.listen(port, "127.0.0.1", r)); // and comes back
		try {
			await eventually(async () => new Set(seen.map(e => e.id)).size, n => n >= 200, 90_000, 500);
			for (const cpf of cpfs) {
				const firsts = [...new Map(seen.filter(e => e.cpf === cpf).map(e => [e.id, e.debtId])).values()];
				expect(firsts).toEqual(written.get(cpf));
			}
		} finally {
			down.closeAllConnections();
			await new Promise(r => down.close(r));
			await api(mesh, "DELETE", `/api/v1/monitoring/subscriptions/${res.body.id}`, { key: consumers.x });
		}
	}, 150_000);

	it("does not let an endpoint that never answers delay another subscriber", async () => {
		const hung = await subscribe(consumers.y, "/hang", ["debt.created"]);
		const ok = await subscribe(consumers.x, "/ok", ["debt.created"]);
		const cpf = randomCpf();
		await api(mesh, "POST", "/api/v1/persons", { key: consumers.x, body: { cpf, nome: "Rui Alves", endereco: "Rua B, 2" } });
		for (const key of [consumers.x, consumers.y]) await api(mesh, "POST", "/api/v1/monitoring/cpfs", { key, body: { cpf } });
		await api(mesh, "POST", `/api/v1/persons/${cpf}/dividas`, { key: consumers.x, body: { valor: 5, empresa: "Loja", dataVencimento: "01/04/2024" } });
		await eventually(async () => arrived("/ok", cpf), r => r.length > 0);
		const stuck = await api(mesh, "GET", `/api/v1/monitoring/deliveries?subscriptionId=${hung.id}`, { key: consumers.y });
		expect(stuck.body.deliveries[0]).toMatchObject({ status: "pending" });
		await api(mesh, "DELETE", `/api/v1/monitoring/subscriptions/${hung.id}`, { key: consumers.y });
		await api(mesh, "DELETE", `/api/v1/monitoring/subscriptions/${ok.id}`, { key: consumers.x });
	});
});

describe("each consumer sees only its own", () => {
	it("hides and protects X's subscriptions, list and deliveries from Y", async () => {
		const sub = await subscribe(consumers.x, "/ok", ["debt.settled"]);
		const cpf = await monitoredPerson(consumers.x);
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
		const before = arrived("/ok", cpf).length;
		expect((await api(mesh, "POST", `/api/v1/monitoring/deliveries/${delivery.id}/replay`, { key: consumers.x, body: {} })).status).toBe(202);
		const again = await eventually(async () => arrived("/ok", cpf), r => r.length > before);
		expect(again[again.length - 1].headers["webhook-id"]).toBe(delivery.eventId);
		await api(mesh, "DELETE", `/api/v1/monitoring/subscriptions/${sub.id}`, { key: consumers.x });
	});
});

describe("Base B's events (no transactions: an intent in the outbox, confirmed after the write)", () => {
	const profile = { dataNascimento: "1990-01-01", endereco: "Rua P, 9", fonteDeRenda: "Assalariado", bens: [] };
	const relay = () => mesh.broker("events-relay").getLocalService("events-relay") as unknown as { settleIntents(graceMs: number): Promise<{ confirmed: number; discarded: number }> };

	it("delivers profile.changed after a PUT", async () => {
		const sub = await subscribe(consumers.x, "/ok", ["profile.changed"]);
		const cpf = await monitoredPerson(consumers.x);
		expect((await api(mesh, "PUT", `/api/v1/profiles/${cpf}`, { key: consumers.x, body: profile })).status).toBe(201);
		const got = await eventually(async () => arrived("/ok", cpf), r => r.some(x => JSON.parse(x.body).type === "profile.changed"));
		expect(JSON.parse(got[0].body)).toMatchObject({ type: "profile.changed", data: { cpf } });
		await api(mesh, "DELETE", `/api/v1/monitoring/subscriptions/${sub.id}`, { key: consumers.x });
	});

	it("confirms the intent of a write whose node died before confirming, and discards one whose write never happened", async () => {
		const cpf = await monitoredPerson(consumers.x);
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

describe("SSRF", () => {
	it("refuses private, loopback, link-local and metadata targets when the setting is off", async () => {
		config.webhooksAllowPrivate = false;
		try {
			for (const url of ["http://127.0.0.1/x", "http://localhost/x", "http://10.1.2.3/x", "http://192.168.0.1/", "http://169.254.169.254/latest/meta-data", "http://[::1]/", "http://[::ffff:127.0.0.1]/", "ftp://example.com/"]) {
				const res = await api(mesh, "POST", "/api/v1/monitoring/subscriptions", { key: consumers.x, body: { url, eventTypes: ["erased"] } });
				expect(res.status, url).toBe(422);
			}
			// At connection time too: a name resolving to loopback is refused by the guarded lookup.
			const sent = await post(`http://localhost:${new URL(sinkUrl).port}/ok`, {}, "{}", { allowPrivate: false, httpsOnly: false });
			expect(sent).toMatchObject({ ok: false, error: "EFORBIDDEN" });
		} finally {
			config.webhooksAllowPrivate = true;
		}
	});
});

describe("the outbox relay", () => {
	it("writes an event only with its write: a refused write leaves none", async () => {
		const cpf = await monitoredPerson(consumers.x);
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
