import { ServiceBroker, type ServiceSchema } from "moleculer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomCpf } from "../../lib/cpf";
import { ConflictError } from "../../lib/errors";
import { HttpStatusMiddleware, httpAnswer } from "../../middlewares/http-status.middleware";

// HttpStatusMiddleware alone, on an in-process broker: the status and Location of an answer come from the
// route table (lib/gateway/routes.ts) by the action's name. The services stand in for ours only by name.
let broker: ServiceBroker;

const services: ServiceSchema[] = [
	{ name: "persons", actions: { create: (ctx: any) => (ctx.params.exists ? Promise.reject(new ConflictError("The person already exists")) : { cpf: ctx.params.cpf }), erase: () => ({ erased: true }) } },
	{ name: "debt-write", actions: { create: () => ({ id: "6f1c1f8e-4a53-4c1e-9a4e-0d1b2a3c4d5e", valor: 1 }) } },
	{ name: "profiles", actions: { put: (ctx: any) => ((ctx.locals.created = ctx.params.fresh), { cpf: ctx.params.cpf }) } },
	{ name: "privacy", actions: { erase: (ctx: any) => ({ status: ctx.params.status }) } },
	{ name: "consumers", actions: { revoke: () => undefined, create: () => ({ id: "c/1 ?" }) } }
];

beforeAll(async () => {
	broker = new ServiceBroker({ transporter: null, nodeID: `http-status-${process.pid}`, logger: false, middlewares: [HttpStatusMiddleware] });
	for (const schema of services) broker.createService(schema);
	await broker.start();
});
afterAll(async () => {
	await broker?.stop();
});

/** The meta an action's answer leaves for the gateway. */
async function metaOf(action: string, params: object = {}): Promise<Record<string, unknown>> {
	const meta: Record<string, unknown> = {};
	await broker.call(action, params, { meta });
	return meta;
}

describe("status from the route table", () => {
	it("gives a created person 201 and its Location", async () => {
		const cpf = randomCpf();
		const meta = await metaOf("persons.create", { cpf });
		expect(meta).toMatchObject({ $statusCode: 201, $location: `/api/v1/persons/${cpf}` });
	});

	it("fills the Location from the answer first, then from the params, each part encoded", async () => {
		const cpf = randomCpf();
		expect(await metaOf("debt-write.create", { cpf })).toEqual({ $statusCode: 201, $location: `/api/v1/persons/${cpf}/dividas/6f1c1f8e-4a53-4c1e-9a4e-0d1b2a3c4d5e` });
		expect(await metaOf("consumers.create")).toEqual({ $statusCode: 201, $location: "/api/v1/consumers/c%2F1%20%3F" });
	});

	it("takes the status the handler's outcome gives: 201 for a new profile, 200 (left unset) for a replaced one", async () => {
		const cpf = randomCpf();
		expect(await metaOf("profiles.put", { cpf, fresh: true })).toEqual({ $statusCode: 201, $location: `/api/v1/profiles/${cpf}` });
		expect(await metaOf("profiles.put", { cpf, fresh: false })).toEqual({});
	});

	it("answers a pending erasure 202, a finished one 200, a revoked key 204, all without a Location", async () => {
		expect(await metaOf("privacy.erase", { status: "pending" })).toEqual({ $statusCode: 202 });
		expect(await metaOf("privacy.erase", { status: "erased" })).toEqual({});
		expect(await metaOf("consumers.revoke")).toEqual({ $statusCode: 204 });
	});

	it("leaves alone an action that is not behind a route, and a call that failed", async () => {
		expect(await metaOf("persons.erase")).toEqual({});
		const meta: Record<string, unknown> = {};
		await expect(broker.call("persons.create", { cpf: randomCpf(), exists: true }, { meta })).rejects.toMatchObject({ code: 409 });
		expect(meta).toEqual({});
	});
});

describe("httpAnswer", () => {
	it("is what the middleware sets, for a stored Idempotency answer to replay", () => {
		expect(httpAnswer("persons.create", { cpf: "52998224725" }, {})).toEqual({ status: 201, location: "/api/v1/persons/52998224725" });
		expect(httpAnswer("profiles.put", {}, { cpf: "52998224725" }, { created: false })).toEqual({ status: 200, location: undefined });
		expect(httpAnswer("audit.append", {}, {})).toEqual({ status: 200 });
	});
});
