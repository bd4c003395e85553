// Faults under load (issue 7 item 3). The mesh runs as in production, every service group of
// docker-stack.yml as two moleculer-runner processes over NATS (two gateways on two ports), while
// bench/workload.ts's mixed workload runs through both gateways. In turn: one replica of each group is
// killed with SIGKILL, nats-server is restarted, PostgreSQL is restarted, FerretDB is stopped for 10 s,
// and Elasticsearch is frozen (SIGSTOP) for 20 s. After each fault:
//   1. every write the clients saw acknowledged is in its base (counted in the base itself);
//   2. clients saw only 2xx, or 503s (retried with the same Idempotency-Key, with the documented body);
//   3. every route answers 2xx again on every surviving gateway within a bound, with no process restarted.
// Everything is bounded in requests and time; nothing here asserts a speed.
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { randomCpf } from "../lib/cpf";
import { SCOPES } from "../lib/scopes";
import { config } from "../config";
import { runWorkload, WORKLOAD_ROUTES, type WorkloadResult } from "../bench/workload";
import { type Group, type ReplicatedMesh, enginePid, startReplicatedMesh } from "./support/replicas";
import { countAcknowledged, expectedCounts } from "./support/acknowledged";
import { untilRecovered } from "./support/probe";
import { type ConnectionFailure, type TimedOut, type Unavailable, watchFetch } from "./support/fetch-watch";
import { engines, eventually } from "./support/mesh";
import { withEs } from "./support/es";

const CLIENTS = 6;
/** Per fault: at most this many requests, whatever the duration. */
const MAX_REQUESTS = 20_000;
/** After a fault is healed (or a replica killed), every route must answer 2xx again within this. */
const RECOVERY_MS = 60_000;
/** Movements reach Elasticsearch asynchronously (JetStream): how long to wait for the acknowledged ones. */
const CATCH_UP_MS = 60_000;

/**
 * Base C indices of this file's own: its thousands of movements and consultations would otherwise swell the
 * shared test indices (test/services/activity.test.ts dumps every document of them). Removed at the end.
 */
const ES_PREFIX = `credit-faults-${randomUUID().slice(0, 8)}`;

let mesh: ReplicatedMesh;
let key = "";
/** A person with a profile and searchable movements, for the recovery probe's reads. */
let probeCpf = "";
/** Gateways still running (the killed api replica is not restarted). */
let liveBases: string[] = [];
let frozenEs: number | null = null;
/** Every request of this process (workload and probes) that got no HTTP answer. */
const watch = watchFetch();

async function admin(base: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
	const res = await fetch(base + path, {
		method, signal: AbortSignal.timeout(15_000),
		headers: { authorization: `Bearer ${config.adminApiKey}`, "content-type": "application/json", finalidade: "concessao_credito" },
		body: body === undefined ? undefined : JSON.stringify(body)
	});
	return { status: res.status, body: await res.json().catch(() => null) };
}

beforeAll(async () => {
	mesh = await startReplicatedMesh({ replicas: 2, env: { ES_INDEX_PREFIX: ES_PREFIX } });
	liveBases = [...mesh.bases];
	const base = mesh.bases[0];
	const consumer = await admin(base, "POST", "/api/v1/consumers", { name: "faults-workload", scopes: SCOPES.filter(s => s !== "consumers:admin"), rateLimit: 1_000_000 });
	expect(consumer.status).toBe(201);
	key = consumer.body.key;
	probeCpf = randomCpf();
	expect((await admin(base, "POST", "/api/v1/persons", { cpf: probeCpf, nome: "Sonda Fixa", endereco: "Rua S, 1" })).status).toBe(201);
	expect((await admin(base, "PUT", `/api/v1/profiles/${probeCpf}`, { cpf: probeCpf, dataNascimento: "01/01/1970", endereco: "Rua S 1", fonteDeRenda: "Aposentado", bens: [] })).status).toBe(201);
	expect((await admin(base, "POST", "/api/v1/transactions", { cpf: probeCpf, tipo: "ted", valor: 100, data: "2025-01-01", id: `probe-${randomUUID()}` })).status).toBe(202);
	const activity = await eventually(() => admin(base, "GET", `/api/v1/activity/${probeCpf}`), r => r.status === 200, 30_000, 300);
	expect(activity.status).toBe(200);
}, 180_000);

afterAll(async () => {
	watch.restore();
	// Whatever happened, leave the engines running and the mesh stopped.
	if (frozenEs) process.kill(frozenEs, "SIGCONT");
	await engines("up").catch(err => console.error("engines up:", err.message));
	await mesh?.stop();
	await withEs(async es => {
		await es.indices.delete({ index: `${ES_PREFIX}-*`, ignore_unavailable: true, allow_no_indices: true });
		await es.indices.deleteIndexTemplate({ name: `${ES_PREFIX}-*` }).catch(() => undefined);
	}).catch(err => console.error("could not remove the test's indices:", err.message));
}, 120_000);

interface FaultRun {
	result: WorkloadResult;
	healedAt: number;
	recovery: Awaited<ReturnType<typeof untilRecovered>>;
	/** Requests that got no HTTP answer during the run (the workload retries them on the other gateway). */
	connectionFailures: ConnectionFailure[];
	/** Every 503 answer during the run, retried or final. */
	unavailable: Unavailable[];
	/** Requests given up by the client (no answer within the workload's per-attempt timeout, or the probe's). */
	timedOut: TimedOut[];
}

/**
 * Runs the workload for durationMs through the given gateways; faultAtMs into it, runs fault(), which
 * resolves when the fault is over (engine back, replica gone). The workload is aborted at the latest
 * 60 s after its duration, whatever happens.
 */
async function underLoad(seed: number, o: { bases: string[]; durationMs: number; faultAtMs: number; fault: () => Promise<void>; live?: () => string[] }): Promise<FaultRun> {
	const stop = new AbortController();
	const started = Date.now();
	const guard = setTimeout(() => stop.abort(), o.durationMs + 60_000);
	const load = runWorkload({ bases: o.bases, key, clients: CLIENTS, durationMs: o.durationMs, maxRequests: MAX_REQUESTS, seed, retry503: { attempts: 15, maxDelayMs: 2000 }, signal: stop.signal });
	try {
		await sleep(o.faultAtMs);
		await o.fault();
		const healedAt = Date.now();
		// (3) is measured from the fault's end, while the workload still runs.
		const [result, recovery] = await Promise.all([load, untilRecovered(o.live?.() ?? o.bases, key, probeCpf, healedAt, RECOVERY_MS)]);
		const seen = watch.since(started);
		return { result, healedAt, recovery, connectionFailures: seen.failures, unavailable: seen.unavailable, timedOut: seen.timedOut };
	} catch (err) {
		stop.abort();
		await load.catch(() => undefined);
		throw err;
	} finally {
		clearTimeout(guard);
	}
}

const countBy = (xs: string[]) => xs.reduce<Record<string, number>>((m, x) => ((m[x] = (m[x] ?? 0) + 1), m), {});
const okByLabel = new Map(Object.values(WORKLOAD_ROUTES).map(r => [r.label, r.ok.map(String)]));

/**
 * The three checks after a fault, all measured before any is asserted (so a failure shows the whole
 * picture), and a summary line with the figures.
 */
async function afterFault(name: string, run: FaultRun, o: { killedGateway?: { base: string; at: number }; clientTimeoutsAllowed?: boolean } = {}): Promise<void> {
	const r = run.result;
	// (2) only success statuses, or 503s (retried, with the documented body); no 500, no connection failure
	// left (the workload retries a refused connection on the other gateway).
	const bad: string[] = [];
	for (const route of r.routes) {
		for (const [status, n] of Object.entries(route.statuses)) {
			if (okByLabel.get(route.route)?.includes(status) || status === "503") continue;
			bad.push(`${route.route}: ${n} × ${status}`);
		}
	}
	const undocumented = r.unexpected.filter(u => u.status === 503).filter(u => {
		let body: any = null;
		try {
			body = JSON.parse(u.body);
		} catch {
			// not JSON: undocumented
		}
		return !(body?.code === 503 && typeof body.name === "string" && typeof body.message === "string" && typeof body.type === "string") ||
			/ECONNREFUSED|127\.0\.0\.1|SELECT|stack/i.test(u.body);
	});
	// No connection refused or reset anywhere but at the killed gateway, and there only once it was killed.
	const killed = o.killedGateway;
	const resets = run.connectionFailures.filter(f => !killed || f.origin !== killed.base || f.at < killed.at);
	const atKilled = run.connectionFailures.length - resets.length;
	// Every 503 of the API carries Retry-After (/health/ready is for operators and says which base is down).
	const without = run.unavailable.filter(u => u.path.startsWith("/api/") && !(Number(u.retryAfter) > 0));
	// (1) every acknowledged write in its base; movements are waited for (they go through JetStream).
	const want = expectedCounts(r.acknowledged);
	const found = await eventually(() => countAcknowledged(r.acknowledged, ES_PREFIX), c => JSON.stringify(c) === JSON.stringify(want), CATCH_UP_MS, 1000);
	// (3) every route 2xx on every live gateway within RECOVERY_MS of the fault's end (probed meanwhile).
	const { recoveredMs, last, seen } = run.recovery;

	const statuses: Record<string, number> = {};
	for (const route of r.routes) for (const [s, n] of Object.entries(route.statuses)) statuses[s] = (statuses[s] ?? 0) + n;
	console.log(`[faults] ${name}: ${r.routes.reduce((a, x) => a + x.requests, 0)} requests in ${(r.elapsedMs / 1000).toFixed(1)} s, statuses ${JSON.stringify(statuses)}, ` +
		`retried ${r.routes.reduce((a, x) => a + x.retried, 0)}, connection failures ${atKilled} at the killed gateway and ${resets.length} elsewhere, ${run.unavailable.length} × 503 (${without.length} without Retry-After), ${run.timedOut.length} given up by the client ${JSON.stringify(countBy(run.timedOut.map(t => t.path.replace(/\/\d{11}/, "/:cpf"))))}; acknowledged ${JSON.stringify(want)}, found ${JSON.stringify(found)}; ` +
		`all routes 2xx ${recoveredMs ?? "never"} ms after the fault ended\n  per route: ` +
		r.routes.map(x => `${x.route} ${JSON.stringify(x.statuses)}${x.retried ? ` (${x.retried} retried: ${JSON.stringify(x.retryCauses)})` : ""}`).join("; ") +
		(seen.length ? `\n  probe failures until recovered: ${seen.slice(0, 12).join("; ")}` : "") +
		(r.unexpected.length ? `\n  unexpected (first 5): ${JSON.stringify(r.unexpected.slice(0, 5))}` : ""));

	expect(bad, `${name}: answers other than 2xx or 503: ${JSON.stringify(r.unexpected.slice(0, 10))}`).toEqual([]);
	expect(undocumented, `${name}: 503s without the documented body`).toEqual([]);
	expect(resets, `${name}: connections refused or reset by a gateway that was not killed`).toEqual([]);
	expect(without, `${name}: 503s without Retry-After`).toEqual([]);
	// An engine fault is answered (2xx or 503) before a client gives up. After a kill -9 the dead replica
	// stays in the registry until the heartbeat timeout, so a call can wait out the request timeout and its
	// retry: there a client time-out is reported, not failed (docs/fault-findings.md, still open).
	if (!o.clientTimeoutsAllowed) expect(run.timedOut, `${name}: requests the client gave up on (no answer in 15 s)`).toEqual([]);
	expect(found, `${name}: acknowledged writes missing from their bases`).toEqual(want);
	expect(recoveredMs, `${name}: not every route answered 2xx within ${RECOVERY_MS} ms: ${JSON.stringify(last)}`).not.toBeNull();
}

describe("faults under a mixed workload", () => {
	it("a. kill -9 of one replica of each service group: the survivors serve", async () => {
		const order: Group[] = ["base-a", "base-b", "base-c", "base-c-front", "report", "privacy", "api"];
		let killedAt = Infinity;
		const run = await underLoad(101, {
			bases: mesh.bases, durationMs: 35_000, faultAtMs: 5000,
			fault: async () => {
				for (const group of order) {
					const at = Date.now();
					await mesh.kill(group, 0);
					if (group === "api") killedAt = at;
					await sleep(3000);
				}
				liveBases = mesh.bases.slice(1);
			},
			live: () => liveBases
		});
		await afterFault("kill -9 one replica of each group", run, { killedGateway: { base: mesh.bases[0], at: killedAt }, clientTimeoutsAllowed: true });
		expect(mesh.running().map(r => `${r.group}#${r.index}`).sort()).toEqual(order.map(g => `${g}#1`).sort());
	}, 240_000);

	it("b. nats-server restarted", async () => {
		const run = await underLoad(202, {
			bases: liveBases, durationMs: 25_000, faultAtMs: 5000,
			fault: async () => {
				await engines("down", "nats");
				await engines("up", "nats");
			}
		});
		await afterFault("nats-server restarted", run);
	}, 240_000);

	it("c. PostgreSQL restarted (Base A, and FerretDB's storage)", async () => {
		const run = await underLoad(303, {
			bases: liveBases, durationMs: 25_000, faultAtMs: 5000,
			fault: async () => {
				await engines("down", "postgres");
				await engines("up", "postgres");
			}
		});
		await afterFault("PostgreSQL restarted", run);
	}, 240_000);

	it("d. the MongoDB-protocol server (FerretDB) stopped for 10 s", async () => {
		const run = await underLoad(404, {
			bases: liveBases, durationMs: 30_000, faultAtMs: 5000,
			fault: async () => {
				await engines("down", "mongo");
				await sleep(10_000);
				await engines("up", "mongo");
			}
		});
		await afterFault("FerretDB stopped 10 s", run);
	}, 240_000);

	it("e. Elasticsearch frozen (SIGSTOP) for 20 s", async () => {
		const run = await underLoad(505, {
			bases: liveBases, durationMs: 40_000, faultAtMs: 5000,
			fault: async () => {
				frozenEs = await enginePid("elasticsearch");
				process.kill(frozenEs, "SIGSTOP");
				await sleep(20_000);
				process.kill(frozenEs, "SIGCONT");
				frozenEs = null;
			}
		});
		await afterFault("Elasticsearch frozen 20 s", run);
	}, 240_000);
});
