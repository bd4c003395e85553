// The engines' own clusters under load (issue 18 item 6), for NATS and Elasticsearch. The local clusters
// (`engines.sh up --cluster nats elasticsearch`: three nats-server nodes with JetStream, three Elasticsearch nodes) carry a mesh
// of every service group of docker-stack.yml, run as in production (moleculer-runner processes, each group
// with its own NATS user) with the settings of `engines.sh env test --cluster`: every node's address, three
// copies of each stream, one replica of each Base C index. In turn, during an ingest of 20 000 movements:
// `kill -9` of the NATS node leading the movements' stream, then of the Elasticsearch node holding the
// movements' primary shard. The node stays dead (the cluster must do without it). After each:
//   1. every acknowledged movement is in Base C exactly once;
//   2. every route answers 2xx again within 60 s of the kill, the mesh not restarted;
//   3. the clients saw only 202s, retried calls (connection failures, time-outs) and 503s with the
//      documented body and Retry-After, and every batch was acknowledged in the end.
// The killed node is started again before the next fault (after the last, by afterAll). Bounded in requests and time; no speed asserted.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Client } from "@elastic/elasticsearch";
import type { Config } from "../config";
import { randomCpf } from "../lib/cpf";
import { SCOPES } from "../lib/scopes";
import { type ReplicatedMesh, startReplicatedMesh } from "./support/replicas";
import { untilRecovered } from "./support/probe";
import { eventually } from "./support/mesh";
import { activitySubject } from "./support/keys";
import { type IngestResult, PARTS, clusterConfig, clusterEngines, clusterEs, clusterPid, clustersRunning, countInCluster, ingestMovements, primaryNode, streamPlacement } from "./support/cluster";

const MOVEMENTS = 20_000;
const BATCH = 500;
/** A fault strikes once this many movements are acknowledged. */
const FAULT_AFTER = 5000;
const RECOVERY_MS = 60_000;
/** Movements reach Elasticsearch through JetStream; with a node gone, shards wait for their second copy. */
const CATCH_UP_MS = 180_000;
const ES_PREFIX = `credit-cluster-${randomUUID().slice(0, 8)}`;
const MOVEMENTS_INDEX = `${ES_PREFIX}-movements`;

let cfg: Config;
let es: Client;
let mesh: ReplicatedMesh;
let base = "";
let key = "";
let probeCpf = "";
/** Left running at the end when they ran before this file (a developer's clusters), else stopped. */
let wereRunning = false;

async function admin(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
	const res = await fetch(base + path, {
		method, signal: AbortSignal.timeout(15_000),
		headers: { authorization: `Bearer ${cfg.adminApiKey}`, "content-type": "application/json", finalidade: "concessao_credito" },
		body: body === undefined ? undefined : JSON.stringify(body)
	});
	return { status: res.status, body: await res.json().catch(() => null) };
}

beforeAll(async () => {
	wereRunning = await clustersRunning().catch(() => false);
	await clusterEngines("up", ...PARTS);
	cfg = clusterConfig();
	es = clusterEs(cfg);
	mesh = await startReplicatedMesh({ replicas: 1, name: "cluster", profile: "test --cluster", cfg, env: { ES_INDEX_PREFIX: ES_PREFIX }, timeoutMs: 120_000 });
	base = mesh.bases[0];
	const consumer = await admin("POST", "/api/v1/consumers", { name: "cluster-ingest", scopes: SCOPES.filter(s => s !== "consumers:admin"), rateLimit: 1_000_000 });
	expect(consumer.status).toBe(201);
	key = consumer.body.key;
	probeCpf = randomCpf();
	expect((await admin("POST", "/api/v1/persons", { cpf: probeCpf, nome: "Sonda Cluster", endereco: "Rua C, 3" })).status).toBe(201);
	expect((await admin("PUT", `/api/v1/profiles/${probeCpf}`, { cpf: probeCpf, dataNascimento: "01/01/1970", endereco: "Rua C 3", fonteDeRenda: "Aposentado", bens: [] })).status).toBe(201);
	// A client retries a 503 (on a loaded machine a group may still be settling right after start-up), with the same id.
	const movement = { cpf: probeCpf, tipo: "ted", valor: 100, data: "2025-01-01", id: `probe-${randomUUID()}` };
	expect((await eventually(() => admin("POST", "/api/v1/transactions", movement), r => r.status !== 503, 60_000, 1000)).status).toBe(202);
	const activity = await eventually(() => admin("GET", `/api/v1/activity/${probeCpf}`), r => r.status === 200, 60_000, 500);
	expect(activity.status).toBe(200);
}, 600_000);

afterAll(async () => {
	await mesh?.stop();
	await es?.indices.delete({ index: `${ES_PREFIX}-*`, ignore_unavailable: true, allow_no_indices: true }).catch(err => console.error("could not remove the test's indices:", err.message));
	await es?.indices.deleteIndexTemplate({ name: `${ES_PREFIX}-*` }).catch(() => undefined);
	await es?.close();
	await clusterEngines(wereRunning ? "up" : "down", ...PARTS).catch(err => console.error("engines --cluster:", err.message));
}, 600_000);

/**
 * The ingest with a fault once FAULT_AFTER movements are acknowledged; the recovery probe runs from the
 * fault on, while the ingest goes on. Returns what the clients saw and how long the routes took to recover.
 */
async function ingestThrough(tag: string, fault: () => Promise<void>) {
	const cpfs = Array.from({ length: 200 }, () => randomCpf());
	let strike!: () => void;
	const due = new Promise<void>(resolve => (strike = resolve));
	const ingest = ingestMovements({
		base, key, cpfs, total: MOVEMENTS, batch: BATCH, clients: 4, attempts: 40, tag: `${tag}-${randomUUID().slice(0, 6)}`,
		onAcknowledged: n => n >= FAULT_AFTER && strike()
	});
	await Promise.race([due, ingest]);
	const at = Date.now();
	await fault();
	const [result, recovery] = await Promise.all([ingest, untilRecovered([base], key, probeCpf, at, RECOVERY_MS)]);
	return { result, recovery, subjects: cpfs.map(c => activitySubject(c)) };
}

async function afterFault(name: string, run: { result: IngestResult; recovery: Awaited<ReturnType<typeof untilRecovered>>; subjects: string[] }) {
	const { result: r, recovery } = run;
	const acknowledged = new Set(r.acknowledged.map(m => m.id)).size;
	const counted = await eventually(() => countInCluster(es, MOVEMENTS_INDEX, run.subjects, r), c => c.found === acknowledged, CATCH_UP_MS, 2000);
	const unexpected = Object.keys(r.attempts).filter(s => !["202", "503", "network", "timeout"].includes(s));
	console.log(`[cluster] ${name}: ${r.sent.length} movements sent, ${acknowledged} acknowledged, ${counted.found} found (${counted.extra} extra copies); ` +
		`attempts ${JSON.stringify(r.attempts)}, finals ${JSON.stringify(r.finals)}, ${r.retried} batches retried; ` +
		`all routes 2xx ${recovery.recoveredMs ?? "never"} ms after the kill` +
		(recovery.seen.length ? `\n  probe failures until recovered: ${recovery.seen.slice(0, 12).join("; ")}` : ""));
	expect(unexpected, `${name}: answers other than 202, 503 or a retried connection failure`).toEqual([]);
	expect(r.undocumented, `${name}: 503s without the documented body or Retry-After`).toEqual([]);
	expect(r.finals, `${name}: every batch acknowledged in the end`).toEqual({ "202": MOVEMENTS / BATCH });
	expect(counted, `${name}: every acknowledged movement in Base C, once`).toEqual({ found: acknowledged, extra: 0 });
	expect(recovery.recoveredMs, `${name}: not every route answered 2xx within ${RECOVERY_MS} ms: ${JSON.stringify(recovery.last)}`).not.toBeNull();
}

describe("the engines' clusters under load", () => {
	it("keeps three copies of the movements' stream and its consumer, and one replica of each Base C index", async () => {
		const stream = await streamPlacement(cfg, mesh.namespace, "transactions");
		expect(stream.replicas).toBe(3);
		expect(stream.peers).toBe(3);
		expect(stream.consumers.length).toBeGreaterThan(0);
		for (const c of stream.consumers) expect(c, `consumer ${c.name}`).toMatchObject({ peers: 3 });
		const settings = await es.indices.getSettings({ index: MOVEMENTS_INDEX });
		expect(settings[MOVEMENTS_INDEX].settings?.index).toMatchObject({ number_of_replicas: "1", write: { wait_for_active_shards: "all" } });
		await es.cluster.health({ index: MOVEMENTS_INDEX, wait_for_status: "green", timeout: "60s" });
		const health = await es.cluster.health({ index: MOVEMENTS_INDEX });
		expect(health).toMatchObject({ number_of_nodes: 3, status: "green", active_shards: 2 });
	}, 120_000);

	it("a. kill -9 of the NATS node leading the movements' stream during a 20 000-movement ingest", async () => {
		let killed = 0;
		const run = await ingestThrough("nats", async () => {
			killed = (await streamPlacement(cfg, mesh.namespace, "transactions")).leader;
			expect(killed).toBeGreaterThan(0);
			process.kill(await clusterPid("nats", killed), "SIGKILL");
		});
		await afterFault(`kill -9 NATS node ${killed}`, run);
		// Another node leads the stream now, still with three peers configured.
		const after = await streamPlacement(cfg, mesh.namespace, "transactions");
		expect(after.leader).not.toBe(killed);
		expect(mesh.running()).toHaveLength(mesh.replicas.length);
		await clusterEngines("up", ...PARTS);
	}, 420_000);

	it("b. kill -9 of the Elasticsearch node holding the movements' primary during a 20 000-movement ingest", async () => {
		let killed = 0;
		const run = await ingestThrough("es", async () => {
			killed = await primaryNode(es, MOVEMENTS_INDEX);
			expect(killed).toBeGreaterThan(0);
			process.kill(await clusterPid("es", killed), "SIGKILL");
		});
		await afterFault(`kill -9 Elasticsearch node ${killed}`, run);
		expect(await primaryNode(es, MOVEMENTS_INDEX)).not.toBe(killed);
		expect(mesh.running()).toHaveLength(mesh.replicas.length);
		// afterAll starts the node again (or stops the clusters).
	}, 420_000);
});
