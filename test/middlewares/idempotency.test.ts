import { randomUUID } from "node:crypto";
import { ServiceBroker, type ServiceSchema } from "moleculer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createValidator } from "../../lib/validator";
import { randomCpf } from "../../lib/cpf";
import { ConflictError } from "../../lib/errors";
import { openAnswer } from "../../lib/base-a/idempotency-answer";
import { HttpStatusMiddleware } from "../../middlewares/http-status.middleware";
import { IdempotencyMiddleware } from "../../middlewares/idempotency.middleware";
import { consumerToken, ZeroTrustMiddleware } from "../../middlewares/zero-trust.middleware";
import { piiCipher } from "../support/keys";
import IdempotencyService from "../../services/idempotency.service";
import { ownerQuery } from "../support/db";

// IdempotencyMiddleware on an in-process broker with the real idempotency service (PostgreSQL), in the
// order of moleculer.config.ts (ZeroTrust proves the caller, HttpStatus sets the status the answer is
// stored with). The services stand in for ours only by name and count how often their handlers run:
// none stores its own answer (as BaseAMixin.inTransaction does), so only the middleware can have.
const consumer = { id: randomUUID(), name: "idempotency-test", scopes: ["persons:write", "consumers:admin"], rateLimit: 60 };
const callerToken = consumerToken(consumer, null);
const runs: Record<string, number> = {};
const ran = (action: string) => void (runs[action] = (runs[action] ?? 0) + 1);
let failNext = false;
let broker: ServiceBroker;

const Persons: ServiceSchema = {
	name: "persons",
	actions: {
		create: { callers: ["api"], scopes: ["persons:write"], handler: (ctx: any) => (ran("persons.create"), { cpf: ctx.params.cpf, nome: ctx.params.nome }) },
		update: {
			callers: ["api"], scopes: ["persons:write"],
			handler(ctx: any) {
				ran("persons.update");
				if (failNext) return (failNext = false), Promise.reject(new ConflictError("not now"));
				return { cpf: ctx.params.cpf, nome: ctx.params.nome };
			}
		}
	}
};
const Consumers: ServiceSchema = {
	name: "consumers",
	actions: { create: { callers: ["api"], scopes: ["consumers:admin"], handler: (ctx: any) => (ran("consumers.create"), { id: randomUUID(), name: ctx.params.name, key: `cm_${randomUUID()}` }) } }
};

beforeAll(async () => {
	broker = new ServiceBroker({ transporter: null, nodeID: `idempotency-mw-${process.pid}`, logger: false, validator: createValidator() as any, middlewares: [HttpStatusMiddleware, IdempotencyMiddleware, ZeroTrustMiddleware] });
	for (const schema of [Persons, Consumers, IdempotencyService]) broker.createService(schema);
	await broker.start();
});
afterAll(async () => {
	await broker?.stop();
});

/** A call as the gateway makes it for a request with an Idempotency-Key; the meta it leaves comes back too. */
async function send(action: string, params: object, key: string | null, metaAction = action) {
	const meta: Record<string, any> = { callerToken };
	if (key) meta.idempotency = { key, action: metaAction };
	const result = await broker.call(action, params, { meta });
	return { result: result as any, status: meta.$statusCode, location: meta.$location };
}

const rowOf = async (key: string) =>
	(await ownerQuery("SELECT consumer_id, action, status, response_enc, cpf_bidx FROM idempotency_keys WHERE key = $1", [key]))[0];

describe("Idempotency-Key", () => {
	it("runs a write once: a repeat gets the first answer, status and Location without running it again", async () => {
		const key = `mw-${randomUUID()}`;
		const cpf = randomCpf();
		const before = runs["persons.create"] ?? 0;
		const first = await send("persons.create", { cpf, nome: "Uma Vez" }, key);
		expect(first).toEqual({ result: { cpf, nome: "Uma Vez" }, status: 201, location: `/api/v1/persons/${cpf}` });
		const again = await send("persons.create", { cpf, nome: "Uma Vez" }, key);
		expect(again).toEqual(first);
		expect(runs["persons.create"] - before).toBe(1);
	});

	it("stores the answer encrypted, under the caller its token proves and the CPF's blind index", async () => {
		const key = `mw-${randomUUID()}`;
		const cpf = randomCpf();
		await send("persons.create", { cpf, nome: "Guardada Cifrada" }, key);
		const row = await rowOf(key);
		expect(row).toMatchObject({ consumer_id: consumer.id, action: "persons.create", status: 201, cpf_bidx: piiCipher().blindIndex(cpf) });
		expect(row.response_enc).not.toMatch(/Guardada|\d{11}/);
		expect(openAnswer(piiCipher(), consumer.id, key, row.response_enc)).toEqual({ body: { cpf, nome: "Guardada Cifrada" }, location: `/api/v1/persons/${cpf}` });
	});

	it("refuses the key for another request, without running it", async () => {
		const key = `mw-${randomUUID()}`;
		const cpf = randomCpf();
		await send("persons.create", { cpf, nome: "Primeira" }, key);
		const before = runs["persons.create"];
		await expect(send("persons.create", { cpf, nome: "Segunda" }, key)).rejects.toMatchObject({ code: 409, type: "IDEMPOTENCY_KEY_REUSED" });
		await expect(send("persons.update", { cpf, nome: "Primeira" }, key)).rejects.toMatchObject({ code: 409, type: "IDEMPOTENCY_KEY_REUSED" });
		expect(runs["persons.create"]).toBe(before);
	});

	it("frees the key when the write fails, so that a retry runs it", async () => {
		const key = `mw-${randomUUID()}`;
		const cpf = randomCpf();
		const before = runs["persons.update"] ?? 0;
		failNext = true;
		await expect(send("persons.update", { cpf, nome: "Tenta De Novo" }, key)).rejects.toMatchObject({ code: 409, type: "CONFLICT" });
		expect(await rowOf(key)).toBeUndefined();
		const retried = await send("persons.update", { cpf, nome: "Tenta De Novo" }, key);
		expect(retried).toEqual({ result: { cpf, nome: "Tenta De Novo" }, status: undefined, location: undefined });
		expect(runs["persons.update"] - before).toBe(2);
		expect((await rowOf(key)).status).toBe(200);
	});

	it("leaves alone a call of another action than the key's (a nested call) and a call without a key", async () => {
		const key = `mw-${randomUUID()}`;
		const cpf = randomCpf();
		const before = runs["persons.create"];
		await send("persons.create", { cpf, nome: "Aninhada" }, key, "debt-write.create");
		await send("persons.create", { cpf, nome: "Aninhada" }, key, "debt-write.create");
		await send("persons.create", { cpf, nome: "Sem Chave" }, null);
		expect(runs["persons.create"] - before).toBe(3);
		expect(await rowOf(key)).toBeUndefined();
	});

	it("never keeps what is shown once: the replay of a new API key has no key", async () => {
		const key = `mw-${randomUUID()}`;
		const first = await send("consumers.create", { name: "parceiro" }, key);
		expect(first.result.key).toMatch(/^cm_/);
		const replay = await send("consumers.create", { name: "parceiro" }, key);
		expect(replay.result).toEqual({ id: first.result.id, name: "parceiro" });
		expect(replay.status).toBe(201);
		const row = await rowOf(key);
		expect(JSON.stringify(openAnswer(piiCipher(), consumer.id, key, row.response_enc))).not.toContain(first.result.key);
	});
});
