import { randomUUID } from "node:crypto";
import { ServiceBroker, type ServiceSchema } from "moleculer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import brokerConfig from "../../moleculer.config";
import { randomCpf } from "../../lib/cpf";
import { NotFoundError } from "../../lib/errors";
import { consumerToken } from "../../middlewares/zero-trust.middleware";
import { activitySubject, piiCipher } from "../support/keys";
import { PiiMixin } from "../../mixins/pii.mixin";
import AuditService from "../../services/audit.service";
import { ownerQuery } from "../support/db";

// The declared action properties, each enforced by its middleware, on a broker of their own with the
// project's whole middleware chain and the real audit service (PostgreSQL). The services below stand in
// for ours only by name: what is tested is what the middlewares make of a declaration.
const recorded: { stream: string; subject: string; source?: string }[] = [];
const consumer = { id: randomUUID(), name: "declared-test", scopes: ["persons:write", "persons:read", "reports:read"], rateLimit: 60 };
const callerToken = consumerToken(consumer, null);
let broker: ServiceBroker;

const Persons: ServiceSchema = {
	name: "persons",
	mixins: [PiiMixin],
	actions: {
		create: { callers: ["api"], scopes: ["persons:write"], audit: "persons.create", handler: (ctx: any) => ({ cpf: ctx.params.cpf }) },
		update: { callers: ["api"], scopes: ["persons:write"], audit: "persons.update", handler: () => Promise.reject(new NotFoundError("Person")) }
	}
};
const Lookup: ServiceSchema = {
	name: "cpf-lookup",
	actions: { get: { callers: ["api", "report"], scopes: ["persons:read"], consultation: true, handler: (ctx: any) => ({ cpf: ctx.params.cpf }) } }
};
const Report: ServiceSchema = {
	name: "report",
	actions: { get: { callers: ["api"], scopes: ["reports:read"], consultation: true, handler: (ctx: any) => ctx.call("cpf-lookup.get", { cpf: ctx.params.cpf }) } }
};

beforeAll(async () => {
	broker = new ServiceBroker({ ...brokerConfig, transporter: null, nodeID: `declared-${process.pid}`, logger: false });
	for (const schema of [Persons, Lookup, Report, AuditService]) broker.createService(schema);
	await broker.start();
	// What the consultation middleware publishes is recorded here instead of going to JetStream.
	broker.channels.publish = async (stream, payload) => {
		const { subject, source } = payload as { subject: string; source?: string };
		recorded.push({ stream, subject, source });
		return { seq: recorded.length } as any;
	};
});
afterAll(async () => {
	await broker?.stop();
});

const rowsOf = (requestId: string) =>
	ownerQuery<{ consumer: string; action: string; outcome: string; cpf_bidx: string }>("SELECT consumer, action, outcome, cpf_bidx FROM audit_log WHERE request_id = $1 ORDER BY seq", [requestId]);

describe("audit", () => {
	it("appends one row per call, naming the caller its token proves and the CPF's blind index, with the failure's outcome", async () => {
		const cpf = randomCpf();
		const ok = randomUUID();
		await broker.call("persons.create", { cpf }, { meta: { callerToken }, requestID: ok });
		expect(await rowsOf(ok)).toEqual([{ consumer: consumer.id, action: "persons.create", outcome: "ok", cpf_bidx: piiCipher().blindIndex(cpf) }]);

		const failed = randomUUID();
		await expect(broker.call("persons.update", { cpf }, { meta: { callerToken }, requestID: failed })).rejects.toMatchObject({ code: 404 });
		expect((await rowsOf(failed)).map(r => r.outcome)).toEqual(["not_found"]);
	});
});

describe("status from the route table", () => {
	it("gives a created person 201 and its Location", async () => {
		const cpf = randomCpf();
		const meta: Record<string, unknown> = { callerToken };
		await broker.call("persons.create", { cpf }, { meta });
		expect(meta).toMatchObject({ $statusCode: 201, $location: `/api/v1/persons/${cpf}` });
	});
});

describe("consultation", () => {
	it("counts a lookup once, and a report once, not its parts", async () => {
		recorded.length = 0;
		const [a, b] = [randomCpf(), randomCpf()];
		await broker.call("cpf-lookup.get", { cpf: a }, { meta: { callerToken } });
		await broker.call("report.get", { cpf: b }, { meta: { callerToken } });
		// Published under Base C's pseudonym, never the CPF.
		expect(recorded).toEqual([
			{ stream: "consultations", subject: activitySubject(a), source: "cpf-lookup" },
			{ stream: "consultations", subject: activitySubject(b), source: "report" }
		]);
	});
});
