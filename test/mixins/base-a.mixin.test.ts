import { randomUUID } from "node:crypto";
import { ServiceBroker } from "moleculer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import brokerConfig from "../../moleculer.config";
import { randomCpf } from "../../lib/cpf";
import { openAnswer } from "../../lib/base-a/idempotency-answer";
import { consumerToken, ZeroTrustMiddleware } from "../../middlewares/zero-trust.middleware";
import { piiCipher } from "../support/keys";
import PersonsService from "../../services/persons.service";
import AuditService from "../../services/audit.service";
import { ownerQuery } from "../support/db";

// A Base A write sent with an Idempotency-Key stores its answer in its own transaction, so a node that
// dies between the commit and the middleware's idempotency.complete leaves the answer for the retry.
// Here no Idempotency middleware runs at all: only the transaction can have stored the answer. The claim's
// token, which that middleware hands the write in ctx.locals, is handed by HoldsClaim from the test's meta.
const HoldsClaim = {
	name: "HoldsClaim",
	localAction(handler: (ctx: any) => Promise<unknown>) {
		return (ctx: any) => {
			ctx.locals ??= {};
			ctx.locals.idempotencyClaim = ctx.meta.testClaim;
			return handler(ctx);
		};
	}
};
let broker: ServiceBroker;
const consumer = { id: randomUUID(), name: "mixin-test", scopes: ["persons:write"], rateLimit: 60 };

beforeAll(async () => {
	broker = new ServiceBroker({ ...brokerConfig, transporter: null, nodeID: `base-a-mixin-${process.pid}`, logger: false, middlewares: [ZeroTrustMiddleware, HoldsClaim] });
	broker.createService(PersonsService);
	broker.createService(AuditService);
	await broker.start();
});
afterAll(async () => {
	await broker?.stop();
});

describe("BaseAMixin.inTransaction", () => {
	it("stores a claimed write's answer with the write, in one commit", async () => {
		const key = `tx-${randomUUID()}`;
		const cpf = randomCpf();
		const claim = randomUUID();
		await ownerQuery("INSERT INTO idempotency_keys (consumer_id, key, action, fingerprint, node_id, claim) VALUES ($1, $2, 'persons.create', 'f', 'gone', $3)", [consumer.id, key, claim]);
		const meta = { callerToken: consumerToken(consumer, null), idempotency: { key, action: "persons.create" }, testClaim: claim };
		const person = await broker.call("persons.create", { cpf, nome: "Uma Vez Só", endereco: "Rua T, 1" }, { meta });

		const [row] = await ownerQuery("SELECT status, response_enc FROM idempotency_keys WHERE consumer_id = $1 AND key = $2", [consumer.id, key]);
		expect(row.status).toBe(201);
		expect(openAnswer(piiCipher(), consumer.id, key, row.response_enc)).toEqual({ body: person, location: `/api/v1/persons/${cpf}` });
	});

	it("stores nothing when the write fails (the transaction rolls back)", async () => {
		const key = `tx-${randomUUID()}`;
		const cpf = randomCpf();
		const meta = { callerToken: consumerToken(consumer, null), idempotency: { key, action: "persons.create" } };
		await broker.call("persons.create", { cpf, nome: "Primeira", endereco: "Rua T, 2" }, { meta: { callerToken: meta.callerToken } });
		const claim = randomUUID();
		await ownerQuery("INSERT INTO idempotency_keys (consumer_id, key, action, fingerprint, node_id, claim) VALUES ($1, $2, 'persons.create', 'f', 'gone', $3)", [consumer.id, key, claim]);
		await expect(broker.call("persons.create", { cpf, nome: "Segunda", endereco: "Rua T, 3" }, { meta: { ...meta, testClaim: claim } })).rejects.toMatchObject({ code: 409 });
		const [row] = await ownerQuery("SELECT status, response_enc FROM idempotency_keys WHERE consumer_id = $1 AND key = $2", [consumer.id, key]);
		expect(row).toEqual({ status: null, response_enc: null });
	});

	it("rolls the write back when its claim is no longer its own (taken over while it ran)", async () => {
		const key = `tx-${randomUUID()}`;
		const cpf = randomCpf();
		await ownerQuery("INSERT INTO idempotency_keys (consumer_id, key, action, fingerprint, node_id, claim) VALUES ($1, $2, 'persons.create', 'f', 'other', $3)", [consumer.id, key, randomUUID()]);
		const meta = { callerToken: consumerToken(consumer, null), idempotency: { key, action: "persons.create" }, testClaim: randomUUID() };
		await expect(broker.call("persons.create", { cpf, nome: "Tarde Demais", endereco: "Rua T, 4" }, { meta })).rejects.toMatchObject({ code: 409, type: "IDEMPOTENCY_IN_PROGRESS" });
		expect(await ownerQuery("SELECT 1 FROM persons WHERE cpf_bidx = $1", [piiCipher().blindIndex(cpf)])).toEqual([]);
	});
});
