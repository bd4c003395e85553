import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomCpf } from "../../lib/cpf";
import { ROUTES } from "../../lib/gateway/routes";
import { SCOPES } from "../../lib/scopes";
import { randomBytes } from "node:crypto";
import { api, BASE_A_MESH, startMesh, type Mesh } from "../support/mesh";
import ApiService from "../../services/api.service";
import { ownerQuery } from "../support/db";
import { connect } from "nats";
import { natsOptions } from "../../config/nats";

let mesh: Mesh;
let cpf: string;
beforeAll(async () => {
	mesh = await startMesh();
	cpf = randomCpf();
	await api(mesh, "POST", "/api/v1/persons", { body: { cpf, nome: "Cliente Teste", endereco: "Rua E, 5" } });
});
afterAll(async () => {
	await mesh?.stop();
});

async function keyWith(scopes: string[], rateLimit?: number): Promise<string> {
	const res = await api(mesh, "POST", "/api/v1/consumers", { body: { name: `test key ${scopes.length}`, scopes, rateLimit } });
	expect(res.status).toBe(201);
	return res.body.key;
}

const concretePath = (path: string, c: string) =>
	`/api/v1${path.replace(":cpf", c).replace(":id", "6f1c1f8e-4a53-4c1e-9a4e-0d1b2a3c4d5e")}`;

describe("authentication and scopes on every route", () => {
	it.each(ROUTES.map(r => [`${r.method} ${r.path}`, r] as const))("%s", async (_label, route) => {
		// A CPF of its own: a scoped call may really run (DELETE /privacy erases).
		const path = concretePath(route.path, randomCpf());
		const writes = ["POST", "PUT", "PATCH"].includes(route.method);
		const body = writes ? {} : undefined;
		// What a caller without a key or scope sends must not be examined first: no 400/415/422 before 401/403.
		const malformed = writes ? { rawBody: "not json", headers: { "content-type": "text/plain", "idempotency-key": "not a key" } } : {};

		const none = await api(mesh, route.method, path, { key: null, ...malformed });
		expect(none.status).toBe(401);
		expect(none.body).toMatchObject({ name: "UnAuthorizedError", code: 401, type: "NO_TOKEN" });

		const wrong = await api(mesh, route.method, path, { key: "cm_this-key-was-never-issued-by-anyone", body });
		expect(wrong.status).toBe(401);
		expect((await api(mesh, route.method, path, { body, headers: { authorization: "Basic YWRtaW46YWRtaW4=" }, key: null })).status).toBe(401);

		const otherScopes = SCOPES.filter(s => s !== route.scope);
		const unscoped = await api(mesh, route.method, path, { key: await keyWith(otherScopes), ...malformed });
		expect(unscoped.status).toBe(403);
		expect(unscoped.body.data).toEqual({ required: route.scope });

		const scoped = await api(mesh, route.method, path, { key: await keyWith([route.scope]), body });
		expect([401, 403]).not.toContain(scoped.status);
	});
});

describe("gateway behaviour", () => {
	it("sends the caller beyond the gateway only as its signed token, never as meta.user", async () => {
		// Everything the mesh's nodes say to each other on NATS during one authenticated request.
		const nc = await connect({ ...natsOptions(), name: "api-test-wire" });
		const packets: string[] = [];
		// Moleculer's packets; the liveness probes and their replies (middlewares/liveness.middleware.ts) are empty.
		const sub = nc.subscribe(`MOL-${mesh.namespace}.>`, { callback: (_err, msg) => !/\.(ALIVE|INBOX)\./.test(msg.subject) && packets.push(msg.string()) });
		try {
			const res = await api(mesh, "GET", `/api/v1/persons/${cpf}`);
			expect(res.status).toBe(200);
			await nc.flush();
		} finally {
			sub.unsubscribe();
			await nc.close();
		}
		const requests = packets.map(p => JSON.parse(p)).filter(p => p.action === "cpf-lookup.get");
		expect(requests).toHaveLength(1);
		expect(Object.keys(requests[0].meta)).toContain("callerToken");
		expect(requests[0].meta.user).toBeUndefined();
		expect(packets.join("\n")).not.toContain(mesh.adminKey);
	});

	it("rate-limits per key with 429 and Retry-After", async () => {
		const key = await keyWith(["persons:read"], 3);
		const statuses: number[] = [];
		let limited;
		for (let i = 0; i < 5; i++) {
			const res = await api(mesh, "GET", `/api/v1/persons/${cpf}`, { key });
			statuses.push(res.status);
			if (res.status === 429) limited = res;
		}
		expect(statuses.slice(0, 3)).toEqual([200, 200, 200]);
		expect(statuses[3]).toBe(429);
		// 3 a minute: the next one is about 20 s away, and Retry-After says so (not a default of 1).
		expect(Number(limited!.headers.get("retry-after"))).toBeGreaterThan(10);
		expect(limited!.body).toMatchObject({ code: 429, type: "RATE_LIMIT_EXCEEDED" });
		// Another key is not affected.
		expect((await api(mesh, "GET", `/api/v1/persons/${cpf}`)).status).toBe(200);
	});

	it("puts a request id on every response, keeping a well-formed one from the client", async () => {
		const ok = await api(mesh, "GET", `/api/v1/persons/${cpf}`);
		expect(ok.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
		const err = await api(mesh, "GET", "/api/v1/persons/123");
		expect(err.headers.get("x-request-id")).toBeTruthy();
		const mine = await api(mesh, "GET", `/api/v1/persons/${cpf}`, { headers: { "x-request-id": "client-req-0001" } });
		expect(mine.headers.get("x-request-id")).toBe("client-req-0001");
		const hostile = await api(mesh, "GET", `/api/v1/persons/${cpf}`, { headers: { "x-request-id": "x".repeat(500) } });
		expect(hostile.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
		// Request ids are kept in the insert-only audit log: one shaped like a CPF never is.
		const cpfShaped = await api(mesh, "GET", `/api/v1/persons/${cpf}`, { headers: { "x-request-id": cpf } });
		expect(cpfShaped.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
		expect(await ownerQuery("SELECT 1 FROM audit_log WHERE request_id = $1", [cpf])).toEqual([]);
	});

	it("reads no body before the key is known: without one, malformed or oversized JSON is a 401, not a 400 or 413", async () => {
		const json = { "content-type": "application/json" };
		const malformed = await api(mesh, "POST", "/api/v1/persons", { key: null, rawBody: "{not json", headers: json });
		expect(malformed.status).toBe(401);
		// 1 MB, four times the JSON limit: read, it would be a 413.
		const big = JSON.stringify({ nome: "x".repeat(1024 * 1024) });
		expect((await api(mesh, "POST", "/api/v1/persons", { key: null, rawBody: big, headers: json })).status).toBe(401);
		expect((await api(mesh, "POST", "/api/v1/persons", { key: "cm_this-key-was-never-issued-by-anyone", rawBody: big, headers: json })).status).toBe(401);
		// With a key, the same bodies are read, and refused for what they are.
		expect((await api(mesh, "POST", "/api/v1/persons", { rawBody: "{not json", headers: json })).status).toBe(400);
		expect((await api(mesh, "POST", "/api/v1/persons", { rawBody: big, headers: json })).status).toBe(413);
	});

	it("tells caches and browsers to keep nothing and guess nothing, on answers and errors alike", async () => {
		for (const res of [await api(mesh, "GET", `/api/v1/persons/${cpf}`), await api(mesh, "GET", `/api/v1/persons/${cpf}`, { key: null })]) {
			expect(res.headers.get("cache-control")).toBe("no-store");
			expect(res.headers.get("x-content-type-options")).toBe("nosniff");
		}
	});

	it("refuses a body of another media type with 415, but a POST without any body is examined as such (found by the fuzzer)", async () => {
		expect((await api(mesh, "POST", "/api/v1/persons", { rawBody: "cpf=1", headers: { "content-type": "text/plain" } })).status).toBe(415);
		const bare = await api(mesh, "POST", "/api/v1/persons");
		expect(bare.status).toBe(422);
		expect(bare.body.type).toBe("VALIDATION_ERROR");
	});

	it("answers 404 in the error shape for unknown routes and never exposes internal actions", async () => {
		for (const path of ["/api/v1/nothing", "/api/v1/audit/append", "/api/v1/idempotency/begin", "/audit.append"]) {
			const res = await api(mesh, "POST", path, { body: {} });
			expect(res.status, path).toBe(404);
			expect(res.body).toMatchObject({ code: 404 });
		}
		// The path of PATCH and DELETE /consumers/:id: the method is wrong, so 405, and still no action behind it.
		const internal = await api(mesh, "POST", "/api/v1/consumers/authenticate", { body: {} });
		expect(internal.status).toBe(405);
		expect(internal.headers.get("allow")).toBe("PATCH, DELETE");
	});

	it("answers 405 with Allow for a method a known path does not serve", async () => {
		for (const [method, path, allow] of [
			["POST", "/health/live", "GET"], ["DELETE", "/api/v1/audit", "GET"], ["PUT", "/api/v1/persons", "POST"],
			["DELETE", `/api/v1/persons/${cpf}`, "PUT, GET"], ["POST", "/metrics", "GET"]
		]) {
			const res = await api(mesh, method, path, { key: null });
			expect(res.status, `${method} ${path}`).toBe(405);
			expect(res.headers.get("allow")).toBe(allow);
			expect(res.body).toMatchObject({ code: 405, type: "METHOD_NOT_ALLOWED" });
		}
	});

	it("answers OPTIONS with the path's methods and never runs an action for it", async () => {
		const before = (await api(mesh, "GET", `/api/v1/persons/${cpf}`)).status;
		expect(before).toBe(200);
		// moleculer-web alone would run the action named by a preflight's Access-Control-Request-Method.
		const res = await api(mesh, "OPTIONS", `/api/v1/privacy/${cpf}`, { headers: { "access-control-request-method": "DELETE" } });
		expect(res.status).toBe(204);
		expect(res.headers.get("allow")).toBe("OPTIONS, GET, DELETE");
		expect((await api(mesh, "GET", `/api/v1/persons/${cpf}`)).status).toBe(200);
		expect((await api(mesh, "OPTIONS", "/api/v1/nothing", { key: null })).status).toBe(404);
	});

	it("serves health, readiness, metrics, the OpenAPI document and Swagger UI", async () => {
		expect((await api(mesh, "GET", "/health/live", { key: null })).status).toBe(200);
		const ready = await api(mesh, "GET", "/health/ready", { key: null });
		expect(ready.status).toBe(200);
		expect(ready.body.bases.A.status).toBe("up");

		const metrics = await api(mesh, "GET", "/metrics", { key: null });
		expect(metrics.status).toBe(200);
		expect(metrics.body).toContain("moleculer_request_total");

		const doc = await api(mesh, "GET", "/openapi.json", { key: null });
		expect(doc.body.openapi).toBe("3.1.0");
		for (const r of ROUTES) {
			const op = doc.body.paths[`/api/v1${r.path.replace(/:(\w+)/g, "{$1}")}`]?.[r.method.toLowerCase()];
			expect(op, `${r.method} ${r.path}`).toBeDefined();
			expect(op["x-scope"]).toBe(r.scope);
		}
		// Every route to an action declared a consultation requires the Finalidade header, and no other route does.
		const consultations = new Set(mesh.broker("api").registry.getActionList({ onlyAvailable: false, skipInternal: true, withEndpoints: false })
			.filter(a => (a.action as { consultation?: boolean } | undefined)?.consultation).map(a => a.name));
		expect([...consultations].sort()).toEqual(["asset-score.get", "cpf-lookup.get", "credit-score.batch", "credit-score.get", "profiles.get", "report.batch", "report.get"]);
		for (const r of ROUTES) {
			const op = doc.body.paths[`/api/v1${r.path.replace(/:(\w+)/g, "{$1}")}`][r.method.toLowerCase()];
			const header = (op.parameters ?? []).find((p: { name: string }) => p.name === "Finalidade");
			expect(header?.required ?? false, `${r.method} ${r.path}`).toBe(consultations.has(r.action));
		}
		// Parameter schemas come from the live actions, not from a second copy.
		const create = doc.body.paths["/api/v1/persons"].post.requestBody.content["application/json"].schema;
		expect(create.required).toEqual(expect.arrayContaining(["cpf", "nome", "endereco"]));
		expect(create.additionalProperties).toBe(false);

		const page = await api(mesh, "GET", "/docs", { key: null });
		expect(page.status).toBe(200);
		expect(page.body).toContain("swagger-ui-bundle.js");
		expect((await api(mesh, "GET", "/docs/swagger-ui-bundle.js", { key: null })).status).toBe(200);
	});
});

describe("error messages in the client's language (Accept-Language)", () => {
	const PT = { "accept-language": "pt-BR,pt;q=0.9,en;q=0.5" };
	const EN = { "accept-language": "en-US,en;q=0.9" };

	interface Case { method: string; path: () => string; opts?: { key?: string | null; body?: () => unknown; rawBody?: string; headers?: Record<string, string> }; status: number; type: string; pt: string }
	const cases: Record<string, Case> = {
		"401 without a key": { method: "GET", path: () => `/api/v1/persons/${cpf}`, opts: { key: null }, status: 401, type: "NO_TOKEN", pt: "Não autorizado: envie a chave de API no cabeçalho Authorization (Bearer)" },
		"401 with an unknown key": { method: "GET", path: () => `/api/v1/persons/${cpf}`, opts: { key: "cm_never-issued-to-anyone-at-all" }, status: 401, type: "INVALID_TOKEN", pt: "Não autorizado: a chave de API é inválida ou foi revogada" },
		"404 for an unknown person": { method: "GET", path: () => `/api/v1/persons/${randomCpf()}`, status: 404, type: "NOT_FOUND", pt: "Pessoa não encontrada" },
		"404 for an unknown route": { method: "GET", path: () => "/api/v1/nowhere", status: 404, type: "NOT_FOUND", pt: "Recurso não encontrado" },
		"405 for a method the path does not serve": { method: "DELETE", path: () => `/api/v1/persons/${cpf}`, status: 405, type: "METHOD_NOT_ALLOWED", pt: "Método não permitido nesta rota" },
		"409 for a CPF already recorded": { method: "POST", path: () => "/api/v1/persons", opts: { body: () => ({ cpf, nome: "Outra Pessoa", endereco: "Rua F, 6" }) }, status: 409, type: "PERSON_EXISTS", pt: "Já existe uma pessoa com este CPF" },
		"415 for a body that is not JSON": { method: "POST", path: () => "/api/v1/persons", opts: { rawBody: "cpf=1", headers: { "content-type": "text/plain" } }, status: 415, type: "UNSUPPORTED_MEDIA_TYPE", pt: "Tipo de mídia não aceito por esta rota" },
		"400 for a consultation without Finalidade": { method: "GET", path: () => `/api/v1/persons/${cpf}`, opts: { headers: { finalidade: "" } }, status: 400, type: "PURPOSE_REQUIRED", pt: "Uma consulta deve declarar a sua finalidade no cabeçalho Finalidade" },
		"400 for an unknown Finalidade": { method: "GET", path: () => `/api/v1/persons/${cpf}`, opts: { headers: { finalidade: "curiosidade" } }, status: 400, type: "PURPOSE_UNKNOWN", pt: "O cabeçalho Finalidade não traz uma das finalidades documentadas" },
		"400 for broken JSON": { method: "POST", path: () => "/api/v1/persons", opts: { rawBody: "{", headers: { "content-type": "application/json" } }, status: 400, type: "ENTITY_PARSE_FAILED", pt: "O corpo da requisição não é um JSON válido" }
	};

	it.each(Object.keys(cases))("%s", async label => {
		const { method, path, opts = {}, status, type, pt: portuguese } = cases[label];
		const o = { key: opts.key, rawBody: opts.rawBody, body: opts.body?.(), headers: opts.headers };
		if (!("key" in opts)) delete o.key;
		const pt = await api(mesh, method, path(), { ...o, headers: { ...o.headers, ...PT } });
		const en = await api(mesh, method, path(), { ...o, headers: { ...o.headers, ...EN } });
		expect([pt.status, en.status]).toEqual([status, status]);
		expect(pt.body).toMatchObject({ code: status, type, message: portuguese });
		expect(en.body).toMatchObject({ code: status, type, name: pt.body.name });
		expect(en.body.message).not.toBe(portuguese);
		expect(pt.headers.get("content-language")).toBe("pt-BR");
		expect(en.headers.get("content-language")).toBe("en");
	});

	it("translates each validation item and keeps its type and field; without Accept-Language the answer is English", async () => {
		const body = { cpf: "123", nome: "", endereco: "Rua G, 7" };
		const pt = await api(mesh, "POST", "/api/v1/persons", { body, headers: PT });
		const plain = await api(mesh, "POST", "/api/v1/persons", { body });
		expect(pt.status).toBe(422);
		expect(pt.body.message).toBe("Erro de validação dos parâmetros");
		expect(pt.body.data.map((d: any) => [d.field, d.type])).toEqual(plain.body.data.map((d: any) => [d.field, d.type]));
		expect(pt.body.data.find((d: any) => d.field === "cpf").message).toMatch(/^O campo 'cpf' deve ser um CPF válido/);
		expect(plain.body.message).toBe("Parameters validation error!");
		expect(plain.headers.get("content-language")).toBe("en");
		expect(JSON.stringify(pt.body)).not.toContain("The '");
	});
});

describe("failed authentications per client address", () => {
	// A gateway behind a proxy at 127.0.0.1 (the stack's TLS edge), allowing 5 failures a minute per address.
	let limited: Mesh;
	const LIMIT = 5;
	beforeAll(async () => {
		const gateway = { ...ApiService, settings: { ...ApiService.settings, authFailuresPerMinute: LIMIT, trustedProxies: "127.0.0.1" } };
		limited = await startMesh(BASE_A_MESH.map(s => (s === ApiService ? gateway : s)));
	});
	afterAll(async () => {
		await limited?.stop();
	});

	/** Calls of consumers.authenticate so far: each is a NATS request and a Base A query. */
	const lookups = () => limited.broker("consumers").metrics.list({ includes: "moleculer.request.total" })
		.flatMap(m => m.values as unknown as { labels: Record<string, string>; value: number }[]).filter(v => v.labels.action === "consumers.authenticate").reduce((sum, v) => sum + Number(v.value), 0);
	const knock = (forwardedFor: string, key = `cm_${randomBytes(16).toString("hex")}`) =>
		api(limited, "GET", `/api/v1/persons/${cpf}`, { key, headers: { "x-forwarded-for": forwardedFor } });

	it("believes X-Forwarded-For only on a connection from the trusted proxy, and only what the proxy appended", () => {
		const req = (remoteAddress: string, forwarded?: string) => ({ socket: { remoteAddress }, headers: forwarded ? { "x-forwarded-for": forwarded } : {} });
		const behindProxy = limited.broker("api").getLocalService("api") as any;
		const direct = mesh.broker("api").getLocalService("api") as any; // TRUSTED_PROXIES unset
		expect(behindProxy.clientAddress(req("127.0.0.1", "198.51.100.1, 203.0.113.7"))).toBe("203.0.113.7");
		expect(behindProxy.clientAddress(req("::ffff:127.0.0.1", "203.0.113.7"))).toBe("203.0.113.7");
		expect(behindProxy.clientAddress(req("127.0.0.1"))).toBe("127.0.0.1");
		expect(behindProxy.clientAddress(req("127.0.0.1", "not an address"))).toBe("127.0.0.1");
		expect(behindProxy.clientAddress(req("10.1.2.3", "203.0.113.7"))).toBe("10.1.2.3");
		expect(direct.clientAddress(req("127.0.0.1", "203.0.113.7"))).toBe("127.0.0.1");
	});

	it("answers 429 before looking a key up once an address failed too often; other addresses and known keys go on", async () => {
		const attacker = "203.0.113.7";
		const validKey = (await api(limited, "POST", "/api/v1/consumers", { body: { name: "reader", scopes: ["persons:read"] } })).body.key;
		// Known to the gateway before the flood: its cache answers for it.
		expect((await knock(attacker, validKey)).status).toBe(200);
		const before = lookups();
		const statuses: number[] = [];
		for (let i = 0; i < LIMIT + 20; i++) statuses.push((await knock(attacker)).status);
		expect(statuses.slice(0, LIMIT)).toEqual(Array(LIMIT).fill(401));
		expect(new Set(statuses.slice(LIMIT))).toEqual(new Set([429]));
		// The flood cost the mesh only the lookups within the limit.
		expect(lookups() - before).toBe(LIMIT);
		const refused = await knock(attacker);
		expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
		// What the client writes in X-Forwarded-For is not believed: only what our proxy appended.
		expect((await knock(`198.51.100.1, ${attacker}`)).status).toBe(429);
		// Another address is not held back, and the known key still works from the flooding one.
		expect((await knock("203.0.113.8")).status).toBe(401);
		expect((await knock(attacker, validKey)).status).toBe(200);
	});
});

describe("rate limits shared by every gateway (docs/rate-limits.md)", () => {
	let two: Mesh;
	let gateways: Mesh[];
	beforeAll(async () => {
		// Base A's services and two gateways, each on a broker of its own.
		two = await startMesh([...BASE_A_MESH, ApiService]);
		gateways = two.brokers.filter(b => b.getLocalService("api")).map(b => ({ ...two, url: `http://127.0.0.1:${(b.getLocalService("api") as any).server.address().port}` }));
	});
	afterAll(async () => {
		await two?.stop();
	});

	it("limits the sum of a key's requests through two gateways, not each gateway's share", async () => {
		expect(gateways).toHaveLength(2);
		const created = await api(gateways[0], "POST", "/api/v1/consumers", { body: { name: "two gateways", scopes: ["persons:read"], rateLimit: 4 } });
		const key = created.body.key;
		const statuses: number[] = [];
		// Alternating: with a bucket per gateway, each would let 4 through (8 in all).
		for (let i = 0; i < 8; i++) statuses.push((await api(gateways[i % 2], "GET", `/api/v1/persons/${cpf}`, { key })).status);
		expect(statuses).toEqual([200, 200, 200, 200, 429, 429, 429, 429]);
		const limited = await api(gateways[1], "GET", `/api/v1/persons/${cpf}`, { key });
		expect(Number(limited.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
		// Another key has a bucket of its own.
		expect((await api(gateways[1], "GET", `/api/v1/persons/${cpf}`)).status).toBe(200);
	});

	it("takes a busy key's tokens in leases (one round trip per lease), never more than the bucket holds", async () => {
		// 60 000 a minute: leases of 100 (0.1 s of the rate; lib/gateway/token-leases.ts).
		const created = await api(gateways[0], "POST", "/api/v1/consumers", { body: { name: "leased", scopes: ["persons:read"], rateLimit: 60_000 } });
		const key = created.body.key;
		for (let i = 0; i < 30; i++) expect((await api(gateways[i % 2], "GET", `/api/v1/persons/${cpf}`, { key })).status).toBe(200);
		// The last take granted a whole lease, not one token (the refill hides how many takes there were).
		const [bucket] = await ownerQuery<{ granted: number }>("SELECT granted FROM rate_buckets WHERE consumer_id = $1", [created.body.id]);
		expect(bucket.granted).toBe(100);
	});
});
