import path from "node:path";
import { rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { randomUUID } from "node:crypto";
import { Webhook } from "standardwebhooks";
import { need } from "../config";
import { randomCpf } from "../lib/cpf";
import { SERVICE_GROUPS } from "../config/groups";
import { newSecret, signedHeaders } from "../lib/webhooks/signature";
import { post } from "../lib/webhooks/send";
import { parseFlags } from "../scripts/args";
import { prepare } from "./lib/engines";
import { call, expect } from "./lib/http";
import { runMain, stopEverything } from "./lib/lifecycle";
import type { BenchState } from "./lib/state";
import { launchMesh, meshWarnings } from "./lib/mesh";
import { percentiles } from "./lib/stats";
import { fmt, gitState, gitText, machineInfo, printMeshWarnings, table, writeResults } from "./lib/report";

/**
 * bench/webhooks.ts (`npm run bench:webhooks`): debts written through the gateway, each one's
 * `debt.created` delivered to every subscription at a local receiver (127.0.0.1, verifying each delivery
 * with the `standardwebhooks` library), with 1 and with 100 subscriptions. The mesh runs in the stack's
 * shape for this path: the `api` and `base-a` groups of docker-stack.yml, one process each, over NATS
 * (base-a relays the outbox, fans out and delivers). Measured from the first write to the last delivery:
 * deliveries/s and events/s (an event counts once all its subscriptions have it); per delivery, the
 * latency from the write's 201 to the delivery's arrival (p50/p99). Raw side in the same run: the same
 * number of signed POSTs sent straight to the receiver by a plain loop (lib/webhooks send + signature,
 * no engine), as many in flight as the sender allows itself: the floor.
 */
const ROOT = path.resolve(__dirname, "..");
const GROUPS = ["api", "base-a"] as const;
/** What the sender allows itself (services/webhook-deliveries.service.ts): per subscription, and per node. */
const PER_SUBSCRIPTION = 4;
const PER_NODE = 64;
/** A consumer holds at most 20 subscriptions (monitoring.service.ts). */
const SUBSCRIPTIONS_PER_CONSUMER = 20;

const opts = parseFlags(process.argv.slice(2), {
	events: { type: "number", default: 1000 },
	eventsAt100: { type: "number", default: 100 },
	cpfs: { type: "number", default: 100 },
	writers: { type: "number", default: 8 },
	subscriptions: { type: "string", default: "1,100" }
});

interface Arrival { at: number; debtId: string; sub: string }
const state: BenchState & { receiver?: Server; extra: { base: string; id: string; adminKey: string }[]; cleaning?: Promise<void> } = { children: [], extra: [] };
let arrivals: Arrival[] = [];
const secrets = new Map<string, Webhook>();
let refused = 0;

async function cleanup(): Promise<void> {
	state.cleaning ??= (async () => {
		for (const c of state.extra.splice(0)) await call(c.base, "DELETE", `/api/v1/consumers/${c.id}`, c.adminKey).catch(() => undefined);
		await stopEverything(state);
		state.receiver?.closeAllConnections();
		await new Promise(r => (state.receiver ? state.receiver.close(r) : r(null)));
	})();
	return state.cleaning;
}

/** The receiver: verifies each delivery with the subscription's secret (the path names the subscription), then records it. */
function startReceiver(): Promise<string> {
	const receiver = (state.receiver = createServer((req, res) => {
		const chunks: Buffer[] = [];
		req.on("data", c => chunks.push(c));
		req.on("end", () => {
			const at = performance.now();
			const sub = (req.url ?? "").slice(1);
			try {
				const event = secrets.get(sub)!.verify(Buffer.concat(chunks).toString(), req.headers as Record<string, string>) as { data: { debtId: string } };
				arrivals.push({ at, debtId: event.data.debtId, sub });
				res.writeHead(204).end();
			} catch {
				refused++;
				res.writeHead(400).end();
			}
		});
	}));
	return new Promise(r => receiver.listen(0, "127.0.0.1", () => r(`http://127.0.0.1:${(receiver.address() as AddressInfo).port}`)));
}

async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
	const until = Date.now() + timeoutMs;
	while (!check()) {
		if (Date.now() > until) throw new Error(`${what} not within ${timeoutMs / 1000} s`);
		await new Promise(r => setTimeout(r, 50));
	}
}

interface Side { deliveries: number; seconds: number; deliveriesPerSec: number; eventsPerSec: number; p50: number; p99: number }

/** One mesh run: `subs` subscriptions over the same CPFs, `events` debts written by `writers` clients. */
async function meshRun(base: string, receiverUrl: string, adminKey: string, subs: number, events: number): Promise<Side> {
	const consumers: { id: string; key: string }[] = [];
	for (let i = 0; i < Math.ceil(subs / SUBSCRIPTIONS_PER_CONSUMER); i++) {
		const name = `bench webhooks ${randomUUID().slice(0, 8)}`;
		const scopes = ["persons:write", "debts:write", "monitoring:write", "monitoring:read"];
		const c = expect(await call(base, "POST", "/api/v1/consumers", adminKey, { name, scopes, rateLimit: 1_000_000 }), 201, "POST /api/v1/consumers");
		state.extra.push({ base, id: c.id, adminKey });
		consumers.push(c);
	}
	const writer = consumers[0].key;
	const cpfs = Array.from({ length: opts.cpfs }, () => randomCpf());
	for (const cpf of cpfs) expect(await call(base, "POST", "/api/v1/persons", writer, { cpf, nome: "Bench Hook", endereco: "Rua W, 1" }), 201, "POST /persons");
	const subIds: { key: string; id: string }[] = [];
	for (let i = 0; i < subs; i++) {
		const c = consumers[Math.floor(i / SUBSCRIPTIONS_PER_CONSUMER)];
		const name = `s${subs}-${i}`;
		const s = expect(await call(base, "POST", "/api/v1/monitoring/subscriptions", c.key, { url: `${receiverUrl}/${name}`, eventTypes: ["debt.created"] }), 201, "POST /monitoring/subscriptions");
		secrets.set(name, new Webhook(s.secret));
		subIds.push({ key: c.key, id: s.id });
	}
	for (const c of consumers) for (const cpf of cpfs) expect(await call(base, "POST", "/api/v1/monitoring/cpfs", c.key, { cpf }), 201, "POST /monitoring/cpfs");
	arrivals = [];
	const answered = new Map<string, number>();
	let next = 0;
	const t0 = performance.now();
	await Promise.all(Array.from({ length: opts.writers }, async () => {
		while (next < events) {
			const n = next++;
			const reply = await call(base, "POST", `/api/v1/persons/${cpfs[n % cpfs.length]}/dividas`, writer, { valor: n + 1, empresa: "Bench", dataVencimento: "01/06/2025" });
			answered.set(expect(reply, 201, "POST /dividas").id, performance.now());
		}
	}));
	const written = performance.now();
	await waitFor(() => arrivals.length >= events * subs, 600_000, `${events * subs} deliveries`);
	const last = Math.max(...arrivals.map(a => a.at));
	const latencies = arrivals.map(a => a.at - answered.get(a.debtId)!);
	const seconds = (last - t0) / 1000;
	console.log(`  ${subs} subscription(s): ${events} writes in ${fmt((written - t0) / 1000)} s, the last delivery ${fmt((last - written) / 1000)} s after the last write`);
	for (const s of subIds) await call(base, "DELETE", `/api/v1/monitoring/subscriptions/${s.id}`, s.key).catch(() => undefined);
	return { deliveries: arrivals.length, seconds, deliveriesPerSec: arrivals.length / seconds, eventsPerSec: events / seconds, ...percentiles(latencies) };
}

/** The floor: the same number of signed POSTs straight to the receiver, as many in flight as the sender allows itself. */
async function rawRun(receiverUrl: string, subs: number, events: number): Promise<Side> {
	const names = Array.from({ length: subs }, (_, i) => `raw${subs}-${i}`);
	const keys = names.map(() => newSecret());
	names.forEach((n, i) => secrets.set(n, new Webhook(keys[i])));
	arrivals = [];
	const total = events * subs;
	const sentAt = new Map<string, number>();
	let next = 0;
	const t0 = performance.now();
	await Promise.all(Array.from({ length: Math.min(PER_NODE, PER_SUBSCRIPTION * subs) }, async () => {
		while (next < total) {
			const n = next++;
			const s = n % subs;
			const id = randomUUID();
			const body = JSON.stringify({ id, type: "debt.created", timestamp: new Date().toISOString(), data: { cpf: "00000000000", debtId: id } });
			sentAt.set(id, performance.now());
			const outcome = await post(`${receiverUrl}/${names[s]}`, signedHeaders(keys[s], id, body), body, { allowPrivate: true, httpsOnly: false });
			if (!outcome.ok) throw new Error(`raw POST: ${outcome.status ?? outcome.error}`);
		}
	}));
	const seconds = (performance.now() - t0) / 1000;
	return { deliveries: arrivals.length, seconds, deliveriesPerSec: arrivals.length / seconds, eventsPerSec: events / seconds, ...percentiles(arrivals.map(a => a.at - sentAt.get(a.debtId)!)) };
}

async function main(): Promise<void> {
	const machine = machineInfo();
	const counts = opts.subscriptions.split(",").map(Number);
	console.log(`webhooks benchmark: subscriptions ${counts.join(" and ")}, ${opts.cpfs} CPFs, ${opts.writers} writers; machine ${machine.cpus} × ${machine.cpuModel}`);
	const code = gitState(ROOT);
	const { env, cfg } = prepare(ROOT);
	const adminKey = need(cfg, "adminApiKey");
	const receiverUrl = await startReceiver();
	// The receiver is on loopback: allowed for this run only, as for local development.
	const services = GROUPS.flatMap(g => SERVICE_GROUPS[g]);
	const mesh = await launchMesh(state, ROOT, { ...env, WEBHOOKS_ALLOW_PRIVATE: "true" }, cfg, {
		shape: "stack", services: [...services], waitFor: [...services],
		// Only Base A's group runs: ready when Base A and the transporter are up.
		acceptPartial: report => report?.bases?.A?.status === "up" && report?.transporter !== "down"
	});
	const results: Record<string, { mesh: Side; raw: Side; ratio: number }> = {};
	for (const subs of counts) {
		const events = subs >= 100 ? opts.eventsAt100 : opts.events;
		const ours = await meshRun(mesh.base, receiverUrl, adminKey, subs, events);
		const raw = await rawRun(receiverUrl, subs, events);
		results[subs] = { mesh: ours, raw, ratio: ours.deliveriesPerSec / raw.deliveriesPerSec };
	}
	console.log("");
	const rows = [["subscriptions", "events", "side", "deliveries", "seconds", "deliveries/s", "events/s", "p50 ms", "p99 ms"]];
	for (const [subs, r] of Object.entries(results)) {
		rows.push([subs, String(r.mesh.deliveries / Number(subs)), "mesh: write → delivery", String(r.mesh.deliveries), fmt(r.mesh.seconds), fmt(r.mesh.deliveriesPerSec, 0), fmt(r.mesh.eventsPerSec, 1), fmt(r.mesh.p50, 0), fmt(r.mesh.p99, 0)]);
		rows.push(["", "", "raw: signed POSTs in a loop", String(r.raw.deliveries), fmt(r.raw.seconds), fmt(r.raw.deliveriesPerSec, 0), fmt(r.raw.eventsPerSec, 1), fmt(r.raw.p50, 1), fmt(r.raw.p99, 1)]);
	}
	console.log(table(rows));
	for (const [subs, r] of Object.entries(results)) console.log(`${subs} subscription(s): mesh / raw deliveries per second = ${fmt(r.ratio, 3)}`);
	console.log("latency: mesh = from the write's 201 to the delivery's arrival; raw = from the POST's start to its arrival. The writers write as fast as the mesh answers (a burst): the mesh's latency includes the queue the burst builds.");
	if (refused) console.warn(`warning: the receiver refused ${refused} deliveries (verification failed)`);
	printMeshWarnings(meshWarnings(mesh.logFile));
	const out = await writeResults(ROOT, "webhooks", {
		benchmark: "webhooks", at: new Date().toISOString(), machine, code,
		params: { cpfs: opts.cpfs, writers: opts.writers, events: opts.events, eventsAt100: opts.eventsAt100, groups: GROUPS },
		results
	});
	console.log(gitText(code));
	console.log(`results: ${out}`);
	rmSync(mesh.logFile, { force: true });
}

runMain(state, { budgetMs: 1_800_000, main, cleanup });
