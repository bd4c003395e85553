import { randomUUID } from "node:crypto";
import { ServiceBroker, type ServiceSchema } from "moleculer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomCpf } from "../../lib/cpf";
import { NotFoundError } from "../../lib/errors";
import { ConsultationMiddleware } from "../../middlewares/consultation.middleware";
import { consumerToken, ZeroTrustMiddleware } from "../../middlewares/zero-trust.middleware";

// ConsultationMiddleware on an in-process broker, after ZeroTrust (which tells it the calling group, as in
// moleculer.config.ts). The services stand in for ours only by name; recordConsultation here only
// remembers what it was given (ConsultationMixin publishes it on the consultations channel).
const recorded: string[] = [];
const consumer = { id: randomUUID(), name: "consultation-test", scopes: ["persons:read", "reports:read"], rateLimit: 60 };
const callerToken = consumerToken(consumer, null);
let broker: ServiceBroker;

const Lookup: ServiceSchema = {
	name: "cpf-lookup",
	methods: { recordConsultation: (cpf: string) => void recorded.push(cpf) },
	actions: {
		get: {
			callers: ["api", "report"], scopes: ["persons:read"], consultation: true,
			handler: (ctx: any) => (ctx.params.missing ? Promise.reject(new NotFoundError("Person")) : { cpf: ctx.params.cpf })
		},
		// Not a consultation: nothing is recorded.
		exists: { callers: ["api"], scopes: ["persons:read"], handler: () => true }
	}
};
const Report: ServiceSchema = {
	name: "report",
	methods: { recordConsultation: (cpf: string) => void recorded.push(`report:${cpf}`) },
	actions: { get: { callers: ["api"], scopes: ["reports:read"], consultation: true, handler: (ctx: any) => ctx.call("cpf-lookup.get", { cpf: ctx.params.cpf }) } }
};

beforeAll(async () => {
	broker = new ServiceBroker({ transporter: null, nodeID: `consultation-${process.pid}`, logger: false, middlewares: [ConsultationMiddleware, ZeroTrustMiddleware] });
	for (const schema of [Lookup, Report]) broker.createService(schema);
	await broker.start();
});
afterAll(async () => {
	await broker?.stop();
});

describe("consultation", () => {
	it("counts a lookup once, and a report once, not its parts", async () => {
		recorded.length = 0;
		const [a, b] = [randomCpf(), randomCpf()];
		await broker.call("cpf-lookup.get", { cpf: a }, { meta: { callerToken } });
		await broker.call("report.get", { cpf: b }, { meta: { callerToken } });
		expect(recorded).toEqual([a, `report:${b}`]);
	});

	it("counts only what answered, and only actions declared consultations", async () => {
		recorded.length = 0;
		await expect(broker.call("cpf-lookup.get", { cpf: randomCpf(), missing: true }, { meta: { callerToken } })).rejects.toMatchObject({ code: 404 });
		expect(await broker.call("cpf-lookup.exists", { cpf: randomCpf() }, { meta: { callerToken } })).toBe(true);
		expect(recorded).toEqual([]);
	});

	it("refuses to start a service with a consultation but no way to record it", () => {
		const local = new ServiceBroker({ transporter: null, nodeID: `consultation-bad-${process.pid}`, logger: false, middlewares: [ConsultationMiddleware] });
		expect(() => local.createService({ name: "profiles", actions: { get: { consultation: true, handler: () => ({}) } } } as ServiceSchema))
			.toThrow(/\.get is a consultation but its service has no ConsultationMixin/);
	});
});
