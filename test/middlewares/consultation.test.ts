import { randomBytes, randomUUID } from "node:crypto";
import { ServiceBroker, type ServiceSchema } from "moleculer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomCpf } from "../../lib/cpf";
import { NotFoundError } from "../../lib/errors";
import { ChannelsMiddleware, type Delivery } from "../../middlewares/channels.middleware";
import { ConsultationMiddleware } from "../../middlewares/consultation.middleware";
import { deleteStreams, eventually } from "../support/mesh";
import { consumerToken, ZeroTrustMiddleware } from "../../middlewares/zero-trust.middleware";
import { activitySubject } from "../support/keys";

// ConsultationMiddleware on an in-process broker, after ZeroTrust (which tells it the calling group, as in
// moleculer.config.ts), publishing on the real JetStream through ChannelsMiddleware. The services stand
// in for ours only by name; a stand-in "activity" (it owns the stream) records what arrives.
const recorded: { stream: string; payload: any }[] = [];
const consumer = { id: randomUUID(), name: "consultation-test", scopes: ["persons:read", "reports:read"], purposes: ["concessao_credito", "cobranca"], rateLimit: 60 };
const callerToken = consumerToken(consumer, null);
/** What a consulting call carries: the caller token and the purpose the client stated. */
const meta = { callerToken, finalidade: "concessao_credito" };
/** Calls of the stand-in lookup's handler: a refused purpose must leave it uncalled. */
let lookups = 0;
let broker: ServiceBroker;
const namespace = `consultation-${randomBytes(4).toString("hex")}`;

const Activity: ServiceSchema = {
	name: "activity",
	channels: {
		consultations: {
			durable: "consultation-test",
			async handler(batch: Delivery<any>[]) {
				for (const d of batch) {
					recorded.push({ stream: "consultations", payload: d.data });
					d.msg.ack();
				}
			}
		}
	}
};

const Lookup: ServiceSchema = {
	name: "cpf-lookup",
	actions: {
		get: {
			callers: ["api", "report"], scopes: ["persons:read"], consultation: true,
			handler: (ctx: any) => (lookups++, ctx.params.missing ? Promise.reject(new NotFoundError("Person")) : { cpf: ctx.params.cpf })
		},
		// Not a consultation: nothing is recorded.
		exists: { callers: ["api"], scopes: ["persons:read"], handler: () => true }
	}
};
const Report: ServiceSchema = {
	name: "report",
	actions: { get: { callers: ["api"], scopes: ["reports:read"], consultation: true, handler: (ctx: any) => ctx.call("cpf-lookup.get", { cpf: ctx.params.cpf }) } }
};

beforeAll(async () => {
	broker = new ServiceBroker({ namespace, transporter: null, nodeID: `consultation-${process.pid}`, logger: false, middlewares: [ChannelsMiddleware(), ConsultationMiddleware, ZeroTrustMiddleware] });
	for (const schema of [Lookup, Report, Activity]) broker.createService(schema);
	await broker.start();
});
afterAll(async () => {
	await broker?.stop();
	await deleteStreams(namespace);
});

/** Waits until `n` consultations arrived through JetStream. */
const arrived = (n: number) => eventually(async () => recorded.length, count => count >= n, 20_000, 50);

describe("consultation", () => {
	it("counts a lookup once, and a report once, not its parts", async () => {
		recorded.length = 0;
		const [a, b] = [randomCpf(), randomCpf()];
		await broker.call("cpf-lookup.get", { cpf: a }, { meta });
		await broker.call("report.get", { cpf: b }, { meta });
		await arrived(2);
		await new Promise(r => setTimeout(r, 300)); // a third (the report's part) would have come by now
		expect(recorded.map(r => [r.stream, r.payload.subject, r.payload.source, r.payload.consumer, r.payload.purpose])).toEqual([
			["consultations", activitySubject(a), "cpf-lookup", consumer.id, "concessao_credito"],
			["consultations", activitySubject(b), "report", consumer.id, "concessao_credito"]
		]);
		for (const { payload } of recorded) expect(Date.parse(payload.at)).toBeGreaterThan(Date.now() - 60_000);
		// Base C's pseudonym travels, never the CPF.
		expect(JSON.stringify(recorded)).not.toMatch(new RegExp(`${a}|${b}`));
	});

	it("counts only what answered, and only actions declared consultations", async () => {
		recorded.length = 0;
		await expect(broker.call("cpf-lookup.get", { cpf: randomCpf(), missing: true }, { meta })).rejects.toMatchObject({ code: 404 });
		expect(await broker.call("cpf-lookup.exists", { cpf: randomCpf() }, { meta })).toBe(true);
		// A consultation after them: once it arrived, anything published before it has arrived too (one stream, in order).
		const marker = randomCpf();
		await broker.call("cpf-lookup.get", { cpf: marker }, { meta });
		await arrived(1);
		expect(recorded.map(r => r.payload.subject)).toEqual([activitySubject(marker)]);
	});

	it("answers even when the channel refuses the consultation (it is logged, not returned)", async () => {
		const publish = broker.channels.publish;
		broker.channels.publish = () => Promise.reject(new Error("NATS down"));
		try {
			const cpf = randomCpf();
			expect(await broker.call("cpf-lookup.get", { cpf }, { meta })).toEqual({ cpf });
		} finally {
			broker.channels.publish = publish;
		}
	});

	it("refuses, before anything is read, a consultation without a purpose, with one not in the list, or one the key may not use", async () => {
		recorded.length = 0;
		lookups = 0;
		const cpf = randomCpf();
		const call = (m: object) => broker.call("cpf-lookup.get", { cpf }, { meta: m });
		await expect(call({ callerToken })).rejects.toMatchObject({ code: 400, type: "PURPOSE_REQUIRED" });
		await expect(call({ callerToken, finalidade: "" })).rejects.toMatchObject({ code: 400, type: "PURPOSE_REQUIRED" });
		await expect(call({ callerToken, finalidade: "curiosidade" })).rejects.toMatchObject({ code: 400, type: "PURPOSE_UNKNOWN" });
		await expect(call({ callerToken, finalidade: "__proto__" })).rejects.toMatchObject({ code: 400, type: "PURPOSE_UNKNOWN" });
		// In the list, but not among the key's purposes (signed into its caller token): 403, whatever the caller sends in meta.
		await expect(call({ callerToken, finalidade: "prevencao_fraude" })).rejects.toMatchObject({ code: 403, type: "PURPOSE_NOT_ALLOWED", data: { allowed: ["concessao_credito", "cobranca"] } });
		// A token signed without purposes allows none.
		const bare = consumerToken({ id: randomUUID(), name: "no purposes", scopes: ["persons:read"], rateLimit: 60 }, null);
		await expect(call({ callerToken: bare, finalidade: "concessao_credito" })).rejects.toMatchObject({ code: 403, type: "PURPOSE_NOT_ALLOWED" });
		// Inside a report, the parts check the same purpose: the report itself is refused first.
		await expect(broker.call("report.get", { cpf }, { meta: { callerToken, finalidade: "prevencao_fraude" } })).rejects.toMatchObject({ code: 403 });
		expect(lookups).toBe(0);
		// Then an allowed one: it is the first (and only) consultation to arrive.
		await call({ callerToken, finalidade: "cobranca" });
		await arrived(1);
		await new Promise(r => setTimeout(r, 300));
		expect(recorded.map(r => r.payload.purpose)).toEqual(["cobranca"]);
		expect(lookups).toBe(1);
	});
});
