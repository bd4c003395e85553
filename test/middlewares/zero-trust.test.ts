import { execFile } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { promisify } from "node:util";
import { ServiceBroker } from "moleculer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { enginesEnv } from "../../bench/lib/engines";
import { randomCpf } from "../../lib/cpf";
import { ROUTES } from "../../lib/gateway/routes";
import { nowSeconds, signToken } from "../../lib/mesh/token";
import { SCOPES } from "../../lib/scopes";
import { PURPOSE_CODES } from "../../lib/purposes";
import { consumerToken, ZeroTrustMiddleware } from "../../middlewares/zero-trust.middleware";
import { config } from "../../config";
import { api, startMesh, type Mesh } from "../support/mesh";
import { ownerQuery } from "../support/db";

const ROOT = process.cwd();
let mesh: Mesh;
let cpf: string;

beforeAll(async () => {
	mesh = await startMesh();
	cpf = randomCpf();
	expect((await api(mesh, "POST", "/api/v1/persons", { body: { cpf, nome: "Alvo Ataque", endereco: "Rua Z, 1" } })).status).toBe(201);
});
afterAll(async () => {
	await mesh?.stop();
});

interface Outcome { action: string; ok: boolean; code?: number; type?: string; name?: string; result?: any }

/** Runs test/support/forged-calls.ts as a node of `group`, with only that group's settings and key. */
async function forgedCalls(group: string, calls: { action: string; params?: object; meta?: object; waitFor?: string; nodeID?: string }[]): Promise<Outcome[]> {
	const env = { ...process.env, ...enginesEnv(ROOT, `test --group ${group}`), MESH_KEYS: "", LOG_LEVEL: "error" };
	const { stdout } = await promisify(execFile)("node_modules/.bin/tsx", ["test/support/forged-calls.ts", mesh.namespace, JSON.stringify(calls)], { env, cwd: ROOT, timeout: 90_000 });
	return JSON.parse(stdout.trim().split("\n").pop()!);
}

const allScopes = { id: "00000000-0000-4000-8000-000000000001", name: "bootstrap-admin", scopes: [...SCOPES], purposes: [...PURPOSE_CODES] };
const counts = async () => (await ownerQuery<{ consumers: number; audit: number; persons: number }>(
	"SELECT (SELECT count(*) FROM consumers)::int AS consumers, (SELECT count(*) FROM audit_log)::int AS audit, (SELECT count(*) FROM persons)::int AS persons"))[0];

describe("a compromised gateway node", () => {
	it("cannot mint keys, read a CPF, write audit rows, erase or open a route, with any meta it likes", async () => {
		const before = await counts();
		const forgedMeta = { consumer: allScopes, user: allScopes, callerToken: undefined };
		// A live token of a consumer that has only persons:read: what a gateway sees in traffic.
		const readerToken = consumerToken({ id: "11111111-1111-4111-8111-111111111111", name: "reader", scopes: ["persons:read"], rateLimit: 60 }, null);
		const outcomes = await forgedCalls("api", [
			{ action: "consumers.create", params: { name: "forged", scopes: [...SCOPES] }, meta: forgedMeta },
			{ action: "consumers.create", params: { name: "forged", scopes: [...SCOPES] }, meta: { callerToken: readerToken } },
			{ action: "cpf-lookup.get", params: { cpf }, meta: forgedMeta },
			{ action: "audit.append", params: { action: "persons.read", outcome: "ok" }, meta: { callerToken: readerToken } },
			{ action: "privacy.erase", params: { cpf }, meta: forgedMeta },
			{ action: "privacy.erase", params: { cpf }, meta: { callerToken: readerToken } },
			{ action: "persons.erase", params: { cpfBidx: "0".repeat(64) }, meta: { callerToken: readerToken } },
			{ action: "idempotency.begin", params: { key: "k1", claim: "11111111-1111-4111-8111-111111111112", action: "persons.create", fingerprint: "f" }, meta: { callerToken: readerToken } },
			{ action: "api.addRoute", params: { route: { path: "/open", aliases: { "GET /": "cpf-lookup.get" } } }, waitFor: "api" },
			{ action: "$node.options", params: {}, waitFor: "audit", nodeID: mesh.broker("audit").nodeID }
		]);
		const by = (i: number) => outcomes[i];
		expect(by(0)).toMatchObject({ ok: false, code: 401, type: "INVALID_CALLER_TOKEN" });
		expect(by(1)).toMatchObject({ ok: false, code: 403, type: "ERR_MISSING_SCOPE" });
		expect(by(2)).toMatchObject({ ok: false, code: 401, type: "INVALID_CALLER_TOKEN" });
		expect(by(3)).toMatchObject({ ok: false, code: 403, type: "CALLER_NOT_ALLOWED" });
		expect(by(4)).toMatchObject({ ok: false, code: 401 });
		expect(by(5)).toMatchObject({ ok: false, code: 403, type: "ERR_MISSING_SCOPE" });
		expect(by(6)).toMatchObject({ ok: false, code: 403, type: "CALLER_NOT_ALLOWED" });
		expect(by(7)).toMatchObject({ ok: false, code: 403, type: "CALLER_NOT_ALLOWED" });
		expect(by(8)).toMatchObject({ ok: false, name: "ServiceNotFoundError" });
		// A node's $node.options would show its transporter URL, password included: operators only.
		expect(by(9)).toMatchObject({ ok: false, code: 403, type: "CALLER_NOT_ALLOWED" });

		// Nothing was written: no consumer, no audit row, the person still there.
		expect(await counts()).toEqual(before);
		expect((await api(mesh, "GET", `/api/v1/persons/${cpf}`)).status).toBe(200);
	});

	it("refuses a caller token that expired, or that a key other than Base A's signed", async () => {
		const claims = { typ: "caller" as const, sub: allScopes.id, scopes: [...SCOPES], iss: "base-a" as const };
		const expired = signToken({ ...claims, exp: nowSeconds() - 1 }, config.meshKeys!.get("base-a")!);
		const foreign = signToken({ ...claims, exp: nowSeconds() + 60 }, generateKeyPairSync("ed25519").privateKey);
		// The gateway's own key cannot make caller tokens either.
		const byGateway = signToken({ ...claims, iss: "api" as any, exp: nowSeconds() + 60 }, config.meshKeys!.get("api")!);
		const live = consumerToken({ ...allScopes, rateLimit: 60 }, null);
		const outcomes = await forgedCalls("api", [expired, foreign, byGateway, live].map(callerToken => ({ action: "cpf-lookup.get", params: { cpf }, meta: { callerToken, finalidade: "concessao_credito" } })));
		expect(outcomes.slice(0, 3).map(o => [o.code, o.type])).toEqual([[401, "INVALID_CALLER_TOKEN"], [401, "INVALID_CALLER_TOKEN"], [401, "INVALID_CALLER_TOKEN"]]);
		// The control: the same node with a live token of a consumer is served, as the gateway is.
		expect(outcomes[3]).toMatchObject({ ok: true, result: { cpf } });
	});

	it("cannot state a purpose beyond what the key allows: the allowed purposes are signed into the caller token", async () => {
		const collector = consumerToken({ ...allScopes, purposes: ["cobranca"], rateLimit: 60 }, null);
		// The claims of a live token, widened by the compromised node: the signature no longer holds.
		const [, payload, signature] = collector.split(".");
		const widened = JSON.parse(Buffer.from(payload, "base64url").toString());
		widened.fin = [...PURPOSE_CODES];
		const tampered = `${collector.split(".")[0]}.${Buffer.from(JSON.stringify(widened)).toString("base64url")}.${signature}`;
		const outcomes = await forgedCalls("api", [
			{ action: "cpf-lookup.get", params: { cpf }, meta: { callerToken: collector, finalidade: "concessao_credito" } },
			{ action: "cpf-lookup.get", params: { cpf }, meta: { callerToken: tampered, finalidade: "concessao_credito" } },
			{ action: "cpf-lookup.get", params: { cpf }, meta: { callerToken: collector, finalidade: "cobranca" } }
		]);
		expect(outcomes.map(o => [o.ok, o.code, o.type])).toEqual([[false, 403, "PURPOSE_NOT_ALLOWED"], [false, 401, "INVALID_CALLER_TOKEN"], [true, undefined, undefined]]);
	});

	it("cannot pass for another group: a node of Base C is refused what only privacy may call", async () => {
		const live = consumerToken({ ...allScopes, rateLimit: 60 }, null);
		const [erase] = await forgedCalls("base-c", [{ action: "persons.erase", params: { cpfBidx: "0".repeat(64) }, meta: { callerToken: live } }]);
		expect(erase).toMatchObject({ ok: false, code: 403, type: "CALLER_NOT_ALLOWED" });
	});
});

describe("declared on every action", () => {
	it("every action of every service names its callers, and the route table's scope is the action's", () => {
		const actions = mesh.brokers.flatMap(b => b.registry.getActionList({ onlyLocal: true, skipInternal: true, withEndpoints: false }) as any[]);
		expect(actions.length).toBeGreaterThan(30);
		for (const { name, action } of actions) {
			if (action.visibility === "private" || action.visibility === "protected") continue;
			expect(Array.isArray(action.callers) && action.callers.length > 0, `${name} declares callers`).toBe(true);
		}
		for (const route of ROUTES) {
			const action = actions.find(a => a.name === route.action)?.action;
			expect(action?.scopes, `${route.action} declares ${route.scope}`).toContain(route.scope);
			expect(action?.callers).toContain("api");
		}
	});

	it("a service with an undeclared action refuses to start", () => {
		const broker = new ServiceBroker({ logger: false, transporter: null, middlewares: [ZeroTrustMiddleware] });
		expect(() => broker.createService({ name: "undeclared", actions: { open: () => "anything" } })).toThrow(/^undeclared\.open declares no 'callers'/);
		expect(() => broker.createService({ name: "declared", actions: { closed: { callers: ["api"], handler: () => "ok" } } })).not.toThrow();
	});
});

describe("ownership of debts", () => {
	it("only the consumer that recorded a debt, or a debts:admin key, settles it", async () => {
		const key = async (scopes: string[]) => (await api(mesh, "POST", "/api/v1/consumers", { body: { name: "credor", scopes } })).body.key as string;
		const [x, y] = [await key(["debts:write"]), await key(["debts:write"])];
		const record = async () => (await api(mesh, "POST", `/api/v1/persons/${cpf}/dividas`, { key: x, body: { valor: 10, empresa: "Banco X", dataVencimento: "01/01/2025" } })).body.id as string;
		const settle = (id: string, k: string) => api(mesh, "PATCH", `/api/v1/persons/${cpf}/dividas/${id}`, { key: k, body: { datePagamento: "02/01/2025" } });

		const first = await record();
		const refused = await settle(first, y);
		expect(refused.status).toBe(403);
		expect(refused.body).toMatchObject({ code: 403, type: "NOT_OWNER" });
		const [row] = await ownerQuery("SELECT data_pagamento FROM debts WHERE id = $1", [first]);
		expect(row.data_pagamento).toBeNull();
		expect((await settle(first, x)).status).toBe(200);
		// The admin key (every scope, debts:admin included) may settle anyone's.
		expect((await settle(await record(), mesh.adminKey)).status).toBe(200);
	});
});
