// PostgreSQL failover under load (issue 18, items 3 and 6). Base A runs on the local pair of
// `engines.sh pg-pair up` (pg_auto_failover: a primary, a synchronous standby, a monitor), named by
// libpq's multi-host URL with target_session_attrs=read-write (lib/base-a/primary.ts). The mesh runs as
// in production (every service group a moleculer-runner process over NATS, as test/faults.test.ts does)
// while debts and persons are written through the gateway; the primary is stopped (immediate shutdown,
// as a lost machine) and the monitor promotes the standby. Afterwards:
//   1. every write the clients saw acknowledged is on the new primary, exactly once (counted by key);
//   2. clients saw only 2xx, or documented 503s with Retry-After (retried with the same Idempotency-Key);
//   3. every route answers 2xx again within 60 s of the stop, with no process of the mesh restarted.
// Bounded in requests and time; nothing asserts a speed. The stopped node is started again at the end
// (it rejoins as the standby).
import { readFileSync } from "node:fs";
import path from "node:path";
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { QueryTypes, Sequelize } from "sequelize";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { config } from "../config";
import { followPrimary, parsePostgresUrl } from "../lib/base-a/primary";
import { randomCpf } from "../lib/cpf";
import { SCOPES } from "../lib/scopes";
import { migrate } from "../migrations";
import { WORKLOAD_ROUTES, runWorkload } from "../bench/workload";
import { countDebts, countPersons } from "./support/acknowledged";
import { untilRecovered } from "./support/probe";
import { watchFetch } from "./support/fetch-watch";
import { type ReplicatedMesh, startReplicatedMesh } from "./support/replicas";
import { engines, eventually } from "./support/mesh";
import { withEs } from "./support/es";

const RECOVERY_MS = 60_000;
const ES_PREFIX = `credit-pgfailover-${randomUUID().slice(0, 8)}`;
const secret = (name: string) => readFileSync(path.join(process.env.CREDIT_MESH_DATA ?? ".data", "secrets", name), "utf8").trim();

let mesh: ReplicatedMesh;
let ownerUrl = "";
let key = "";
let probeCpf = "";
let stoppedNode = "";
const watch = watchFetch();

/** A query as the schema owner on whichever node of the pair is the primary now (a pool of its own each time). */
async function pairQuery(sql: string, bind: unknown[] = []): Promise<any[]> {
	const target = parsePostgresUrl(ownerUrl);
	const sequelize = new Sequelize(target.url, { ...followPrimary(target), logging: false, retry: { max: 0 } });
	try {
		return await sequelize.query(sql, { bind: bind.length ? bind : undefined, type: QueryTypes.SELECT });
	} finally {
		await sequelize.close();
	}
}

async function admin(method: string, route: string, body?: unknown): Promise<{ status: number; body: any }> {
	const res = await fetch(mesh.bases[0] + route, {
		method, signal: AbortSignal.timeout(15_000),
		headers: { authorization: `Bearer ${config.adminApiKey}`, "content-type": "application/json", finalidade: "concessao_credito" },
		body: body === undefined ? undefined : JSON.stringify(body)
	});
	return { status: res.status, body: await res.json().catch(() => null) };
}

beforeAll(async () => {
	await engines("pg-pair", "up");
	ownerUrl = secret("postgres_pair_test_owner_url");
	// A clean Base A on the pair, as test/support/global-setup.ts does on the single cluster.
	await pairQuery("DROP SCHEMA public CASCADE");
	await pairQuery("CREATE SCHEMA public");
	await migrate(ownerUrl);
	mesh = await startReplicatedMesh({
		replicas: 1, name: "pgfailover",
		env: { ES_INDEX_PREFIX: ES_PREFIX, POSTGRES_URL: secret("postgres_pair_test_url"), POSTGRES_OWNER_URL: ownerUrl }
	});
	const consumer = await admin("POST", "/api/v1/consumers", { name: "pg-failover", scopes: SCOPES.filter(s => s !== "consumers:admin"), rateLimit: 1_000_000 });
	expect(consumer.status).toBe(201);
	key = consumer.body.key;
	probeCpf = randomCpf();
	expect((await admin("POST", "/api/v1/persons", { cpf: probeCpf, nome: "Sonda Par", endereco: "Rua S, 1" })).status).toBe(201);
	expect((await admin("PUT", `/api/v1/profiles/${probeCpf}`, { cpf: probeCpf, dataNascimento: "01/01/1970", endereco: "Rua S 1", fonteDeRenda: "Aposentado", bens: [] })).status).toBe(201);
	expect((await admin("POST", "/api/v1/transactions", { cpf: probeCpf, tipo: "ted", valor: 100, data: "2025-01-01", id: `probe-${randomUUID()}` })).status).toBe(202);
	expect((await eventually(() => admin("GET", `/api/v1/activity/${probeCpf}`), r => r.status === 200, 30_000, 300)).status).toBe(200);
}, 400_000);

afterAll(async () => {
	watch.restore();
	await mesh?.stop();
	// The stopped node comes back as the standby (pg_auto_failover rewinds it).
	if (stoppedNode) await engines("pg-pair", "start-node", stoppedNode).catch(err => console.error("pg-pair start-node:", err.message));
	await withEs(async es => {
		await es.indices.delete({ index: `${ES_PREFIX}-*`, ignore_unavailable: true, allow_no_indices: true });
		await es.indices.deleteIndexTemplate({ name: `${ES_PREFIX}-*` }).catch(() => undefined);
	}).catch(err => console.error("could not remove the test's indices:", err.message));
}, 120_000);

describe("PostgreSQL pair: the primary stopped during debt writes", () => {
	it("the standby takes over; every acknowledged write is there once, clients saw 2xx or documented 503s, routes 2xx within 60 s", async () => {
		// Synchronous before the fault: the primary waits for the standby (pg_auto_failover's quorum of one).
		const [sync] = await pairQuery("SELECT current_setting('synchronous_standby_names') AS names");
		expect(sync.names).toMatch(/^ANY 1 \(pgautofailover_standby_\d\)$/);
		const [primaryNode] = (await engines("pg-pair", "primary")).split(" ");

		const started = Date.now();
		const load = runWorkload({
			bases: mesh.bases, key, clients: 4, durationMs: 60_000, maxRequests: 20_000, seed: 1818,
			mix: { lookup: 2, createPerson: 2, createDebt: 6, getProfile: 0, putProfile: 0, score: 0, transactions: 0, activity: 0, report: 0 },
			retry503: { attempts: 40, maxDelayMs: 2000 }
		});
		// The workload first creates its pool of persons (with profiles and movements); the debts come after.
		await sleep(15_000);
		await engines("pg-pair", "stop-node", primaryNode);
		stoppedNode = primaryNode;
		const stoppedAt = Date.now();
		const [result, recovery] = await Promise.all([load, untilRecovered(mesh.bases, key, probeCpf, stoppedAt, RECOVERY_MS)]);
		const seen = watch.since(started);

		const newPrimary = (await engines("pg-pair", "primary")).split(" ")[0];
		const want = { persons: new Set(result.acknowledged.persons).size, debts: new Set(result.acknowledged.debts.map(d => d.id)).size };
		// persons.cpf_bidx and debts.id are unique keys: a count equal to the acknowledged ones is each exactly once.
		const found = { persons: await countPersons(result.acknowledged.persons, pairQuery), debts: await countDebts(result.acknowledged.debts, pairQuery) };
		const statuses: Record<string, number> = {};
		for (const route of result.routes) for (const [s, n] of Object.entries(route.statuses)) statuses[s] = (statuses[s] ?? 0) + n;
		const okByLabel = new Map(Object.values(WORKLOAD_ROUTES).map(r => [r.label, r.ok.map(String)]));
		const bad = result.routes.flatMap(r => Object.entries(r.statuses).filter(([s]) => s !== "503" && !okByLabel.get(r.route)?.includes(s)).map(([s, n]) => `${r.route}: ${n} × ${s}`));
		const undocumented = result.unexpected.filter(u => u.status === 503).filter(u => {
			const body = (() => { try { return JSON.parse(u.body); } catch { return null; } })();
			return !(body?.code === 503 && body.type === "BASE_UNAVAILABLE") || /127\.0\.0\.1|SELECT|stack/i.test(u.body);
		});
		const withoutRetryAfter = seen.unavailable.filter(u => u.path.startsWith("/api/") && !(Number(u.retryAfter) > 0));
		console.log(`[pg-failover] node${primaryNode} stopped, node${newPrimary} primary; ${result.routes.reduce((a, r) => a + r.requests, 0)} requests, statuses ${JSON.stringify(statuses)}, ` +
			`retried ${result.routes.reduce((a, r) => a + r.retried, 0)}, ${seen.unavailable.length} × 503; acknowledged ${JSON.stringify(want)}, found ${JSON.stringify(found)}; ` +
			`all routes 2xx ${recovery.recoveredMs ?? "never"} ms after the stop` + (recovery.seen.length ? `\n  probe failures: ${recovery.seen.slice(0, 12).join("; ")}` : ""));

		expect(newPrimary).not.toBe(primaryNode);
		expect(bad, `answers other than 2xx or 503: ${JSON.stringify(result.unexpected.slice(0, 10))}`).toEqual([]);
		expect(undocumented, "503s without the documented body").toEqual([]);
		expect(withoutRetryAfter, "503s without Retry-After").toEqual([]);
		expect(seen.failures, "connections refused or reset by the gateway").toEqual([]);
		expect(want.debts, "debts were acknowledged").toBeGreaterThan(0);
		expect(found).toEqual(want);
		expect(recovery.recoveredMs, `not every route answered 2xx within ${RECOVERY_MS} ms: ${JSON.stringify(recovery.last)}`).not.toBeNull();
	}, 300_000);
});
