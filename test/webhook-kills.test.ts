// Webhooks under kill -9 (issue 19). The gateway and two base-a replicas run as in production
// (moleculer-runner processes over NATS, NODE_ENV=production: https only). base-a relays the outbox
// (one replica at a time, the other standing by), fans events out and delivers them (both). While
// debts are written, each base-a replica in turn is killed -9 mid-stream and started again, so the
// relaying node and a delivering node both die with work in hand. A local https receiver (a certificate
// of its own, trusted by the children through NODE_EXTRA_CA_CERTS) records what arrives. Afterwards
// every debt's event has arrived at least once, each CPF's in the order written: nothing lost.
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomCpf } from "../lib/cpf";
import { SCOPES } from "../lib/scopes";
import { config } from "../config";
import { type ReplicatedMesh, startReplicatedMesh } from "./support/replicas";
import { eventually } from "./support/mesh";

const CPFS = 8;
const PER_CPF = 30;
/** Time for everything to arrive after the last kill: a killed node's claimed deliveries and unacked fan-out wait out their 60 s lease / ack wait. */
const SETTLE_MS = 240_000;

let mesh: ReplicatedMesh;
let receiver: Server;
let key = "";
let secret = "";
const dir = mkdtempSync(path.join(os.tmpdir(), "webhook-kills-"));
const seen: { cpf: string; debtId: string; id: string }[] = [];
let forged = 0;

async function call(method: string, route: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
	const res = await fetch(`${mesh.bases[0]}/api/v1${route}`, {
		method, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(20_000),
		headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...headers }
	});
	const text = await res.text();
	return { status: res.status, body: text ? JSON.parse(text) : null };
}

/** Posts a debt under its own Idempotency-Key until it is answered 201 (a kill may lose an answer); its id. */
async function writeDebt(cpf: string, n: number): Promise<string> {
	const idem = `wk-${randomUUID()}`;
	const until = Date.now() + 90_000;
	for (;;) {
		const res = await call("POST", `/persons/${cpf}/dividas`, { valor: n, empresa: "Banco K", dataVencimento: "01/06/2025" }, { "idempotency-key": idem })
			.catch(() => ({ status: 0, body: null }));
		if (res.status === 201) return res.body.id;
		if (![0, 409, 502, 503, 504].includes(res.status)) throw new Error(`debt ${n}: unexpected ${res.status} ${JSON.stringify(res.body)}`);
		if (Date.now() > until) throw new Error(`debt ${n}: no 201 in 90 s`);
		await sleep(300);
	}
}

beforeAll(async () => {
	// The receiver's certificate: for 127.0.0.1, trusted by the mesh's processes only.
	execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
		"-keyout", path.join(dir, "key.pem"), "-out", path.join(dir, "cert.pem")], { stdio: "ignore" });
	receiver = createServer({ key: readFileSync(path.join(dir, "key.pem")), cert: readFileSync(path.join(dir, "cert.pem")) }, (req, res) => {
		let body = "";
		req.on("data", c => (body += c));
		req.on("end", () => {
			try {
				const event = new Webhook(secret).verify(body, req.headers as Record<string, string>) as { data: { cpf: string; debtId: string } };
				seen.push({ cpf: event.data.cpf, debtId: event.data.debtId, id: String(req.headers["webhook-id"]) });
				res.writeHead(204).end();
			} catch {
				forged++;
				res.writeHead(400).end();
			}
		});
	});
	await new Promise<void>(r => receiver.listen(0, "127.0.0.1", r));
	mesh = await startReplicatedMesh({
		name: "webhook-kills", groups: ["api", "base-a"], ready: false,
		env: { WEBHOOKS_ALLOW_PRIVATE: "true", NODE_EXTRA_CA_CERTS: path.join(dir, "cert.pem") }
	});
	// The gateway may not reach base-a's consumers service for a moment after start-up (ready: false above).
	const admin = await eventually(() => fetch(`${mesh.bases[0]}/api/v1/consumers`, {
		method: "POST", body: JSON.stringify({ name: `webhook-kills-${randomUUID().slice(0, 8)}`, scopes: SCOPES, rateLimit: 100_000 }),
		headers: { authorization: `Bearer ${config.adminApiKey}`, "content-type": "application/json" }
	}).then(async r => ({ status: r.status, ...((await r.json()) as { key?: string }) })), r => r.status === 201, 60_000, 500);
	expect(admin.status).toBe(201);
	key = admin.key!;
}, 300_000);
afterAll(async () => {
	await mesh?.stop();
	receiver?.closeAllConnections();
	await new Promise(r => receiver?.close(r));
	rmSync(dir, { recursive: true, force: true });
});

describe("webhooks under kill -9 of the relaying and delivering nodes", () => {
	it(`${CPFS * PER_CPF} events while each base-a replica is killed in turn: every one delivered, in order per CPF`, async () => {
		const sub = await call("POST", "/monitoring/subscriptions", { url: `https://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`, eventTypes: ["debt.created"] });
		expect(sub.status).toBe(201);
		secret = sub.body.secret;
		const cpfs = Array.from({ length: CPFS }, () => randomCpf());
		for (const cpf of cpfs) {
			expect((await call("POST", "/persons", { cpf, nome: "Ana Kill", endereco: "Rua K, 1" })).status).toBe(201);
			expect((await call("POST", "/monitoring/cpfs", { cpf })).status).toBe(201);
		}
		// Each CPF's debts one after another (the order to keep), the CPFs side by side.
		const written = new Map<string, string[]>(cpfs.map(cpf => [cpf, []]));
		const writing = Promise.all(cpfs.map(async cpf => {
			for (let i = 1; i <= PER_CPF; i++) written.get(cpf)!.push(await writeDebt(cpf, i));
		}));
		const total = () => [...written.values()].reduce((n, ids) => n + ids.length, 0);
		let killed = 0;
		const backlogs: number[] = [];
		for (const index of [0, 1]) {
			// Mid-stream: once a third (then two thirds) of the debts are written and deliveries are flowing.
			await eventually(async () => total(), n => n >= (CPFS * PER_CPF * (index + 1)) / 3, 120_000, 100);
			backlogs.push(total() - new Set(seen.map(e => e.id)).size); // written, not yet delivered, when the node dies
			await mesh.kill("base-a", index);
			killed++;
			await mesh.restart("base-a", index);
		}
		await writing;
		expect(killed).toBe(2);
		expect(total()).toBe(CPFS * PER_CPF);
		await eventually(async () => new Set(seen.map(e => e.id)).size, n => n >= CPFS * PER_CPF, SETTLE_MS, 1000);
		const duplicates = seen.length - new Set(seen.map(e => e.id)).size;
		console.log(`webhook kills: ${CPFS * PER_CPF} events, ${seen.length} deliveries (${duplicates} sent again after a kill), ${forged} refused by the receiver; not yet delivered at the kills: ${backlogs.join(", ")}`);
		expect(forged).toBe(0);
		for (const cpf of cpfs) {
			const firsts = [...new Map(seen.filter(e => e.cpf === cpf).map(e => [e.id, e.debtId])).values()];
			expect(firsts).toEqual(written.get(cpf));
		}
	}, 900_000);
});
