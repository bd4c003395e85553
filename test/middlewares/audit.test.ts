import { randomUUID } from "node:crypto";
import { ServiceBroker, type ServiceSchema } from "moleculer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import brokerConfig from "../../moleculer.config";
import { randomCpf } from "../../lib/cpf";
import { NotFoundError } from "../../lib/errors";
import { consumerToken } from "../../middlewares/zero-trust.middleware";
import { piiCipher } from "../support/keys";
import { PiiMixin } from "../../mixins/pii.mixin";
import AuditService from "../../services/audit.service";
import { ownerQuery } from "../support/db";

// AuditMiddleware, on a broker of its own with the project's whole middleware chain and the real audit
// service (PostgreSQL). The services below stand in for ours only by name: what is tested is what the
// middleware makes of an action's `audit` declaration.
const consumer = { id: randomUUID(), name: "audit-test", scopes: ["persons:write", "persons:read", "profiles:write"], rateLimit: 60 };
const callerToken = consumerToken(consumer, null);
let broker: ServiceBroker;

const Persons: ServiceSchema = {
	name: "persons",
	mixins: [PiiMixin],
	actions: {
		create: { callers: ["api"], scopes: ["persons:write"], audit: true, handler: (ctx: any) => ({ cpf: ctx.params.cpf }) },
		update: { callers: ["api"], scopes: ["persons:write"], audit: true, handler: () => Promise.reject(new NotFoundError("Person")) },
		// Not declared: nothing is appended.
		count: { callers: ["api"], scopes: ["persons:read"], handler: () => 1 }
	}
};
const Profiles: ServiceSchema = {
	name: "profiles",
	mixins: [PiiMixin],
	actions: {
		// A base without transactions: the row goes in before the write, and another after.
		put: { callers: ["api"], scopes: ["profiles:write"], audit: { before: "started" }, handler: (ctx: any) => ({ cpf: ctx.params.cpf }) },
		// The outcome is recorded later (by a worker) when the answer says so.
		erase: {
			callers: ["api"], scopes: ["profiles:write"], audit: { outcome: (r: { pending: boolean }) => (r.pending ? null : "erased") },
			handler: (ctx: any) => ({ pending: ctx.params.pending })
		},
		// Filed under a blind index given as such (no CPF in the params).
		sweep: { callers: ["api"], scopes: ["profiles:write"], audit: true, handler: () => true }
	}
};

beforeAll(async () => {
	broker = new ServiceBroker({ ...brokerConfig, transporter: null, nodeID: `audit-mw-${process.pid}`, logger: false });
	for (const schema of [Persons, Profiles, AuditService]) broker.createService(schema);
	await broker.start();
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

	it("appends nothing for an action that declares no audit", async () => {
		const requestID = randomUUID();
		expect(await broker.call("persons.count", {}, { meta: { callerToken }, requestID })).toBe(1);
		expect(await rowsOf(requestID)).toEqual([]);
	});

	it("appends the declared row before the handler runs, and the outcome after", async () => {
		const requestID = randomUUID();
		await broker.call("profiles.put", { cpf: randomCpf() }, { meta: { callerToken }, requestID });
		expect((await rowsOf(requestID)).map(r => `${r.action}:${r.outcome}`)).toEqual(["profiles.put:started", "profiles.put:ok"]);
	});

	it("takes the outcome from the answer, and appends no row when it says none yet", async () => {
		const done = randomUUID();
		await broker.call("profiles.erase", { cpf: randomCpf(), pending: false }, { meta: { callerToken }, requestID: done });
		expect((await rowsOf(done)).map(r => r.outcome)).toEqual(["erased"]);
		const pending = randomUUID();
		await broker.call("profiles.erase", { cpf: randomCpf(), pending: true }, { meta: { callerToken }, requestID: pending });
		expect(await rowsOf(pending)).toEqual([]);
	});

	it("files the row under a blind index given as cpfBidx, and under none without a CPF", async () => {
		const bidx = piiCipher().blindIndex(randomCpf());
		const given = randomUUID();
		await broker.call("profiles.sweep", { cpfBidx: bidx }, { meta: { callerToken }, requestID: given });
		expect((await rowsOf(given)).map(r => r.cpf_bidx)).toEqual([bidx]);
		const none = randomUUID();
		await broker.call("profiles.sweep", {}, { meta: { callerToken }, requestID: none });
		expect((await rowsOf(none)).map(r => r.cpf_bidx)).toEqual([null]);
	});

	it("fails the call when its row cannot be written: no answer without its row", async () => {
		// The same services without the audit service: audit.append has nowhere to go.
		const alone = new ServiceBroker({ ...brokerConfig, transporter: null, nodeID: `audit-mw-alone-${process.pid}`, logger: false, retryPolicy: { enabled: false } });
		let ran = 0;
		alone.createService({ ...Persons, actions: { ...Persons.actions, create: { ...(Persons.actions!.create as object), handler: () => (ran++, { ok: true }) } } } as ServiceSchema);
		await alone.start();
		try {
			await expect(alone.call("persons.create", { cpf: randomCpf() }, { meta: { callerToken } })).rejects.toMatchObject({ name: "ServiceNotFoundError" });
			expect(ran).toBe(1);
		} finally {
			await alone.stop();
		}
	});
});
