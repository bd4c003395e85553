import { ServiceBroker, type ServiceSchema } from "moleculer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DatabaseMixin, mapDriverError } from "../../mixins/database.mixin";

// DatabaseMixin on an in-process broker, over moleculer-db's in-memory adapter: no engine. The ping and the
// errors are the test's, shaped as the drivers raise them.
const refused = () => Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" });
const duplicate = () => Object.assign(new Error('duplicate key value violates unique constraint "persons_cpf_bidx_key"'), { name: "SequelizeUniqueConstraintError" });
let pingFails = false;
let broker: ServiceBroker;

const Vault: ServiceSchema = {
	name: "vault",
	mixins: [DatabaseMixin("A", () => (pingFails ? Promise.reject(refused()) : Promise.resolve()))],
	actions: {
		fail: { params: { kind: "string" }, handler: (ctx: any) => Promise.reject(ctx.params.kind === "down" ? refused() : ctx.params.kind === "duplicate" ? duplicate() : new RangeError("boom")) }
	}
};

beforeAll(async () => {
	broker = new ServiceBroker({ transporter: null, nodeID: `base-mixin-${process.pid}`, logger: false });
	broker.createService(Vault);
	await broker.start();
});
afterAll(async () => {
	await broker?.stop();
});

describe("DatabaseMixin", () => {
	it("publishes none of moleculer-db's generic actions, only its health and the service's own", () => {
		const names = broker.registry.getActionList({ onlyLocal: true, skipInternal: true }).map((a: any) => a.name).sort();
		expect(names).toEqual(["vault.fail", "vault.health"]);
	});

	it("answers health when the base answers its ping, and 503 with Retry-After data when it does not", async () => {
		expect(await broker.call("vault.health")).toEqual({ base: "A", status: "up" });
		pingFails = true;
		try {
			await expect(broker.call("vault.health")).rejects.toMatchObject({ code: 503, type: "BASE_UNAVAILABLE", data: { base: "A", retryAfter: 5 }, retryable: false });
		} finally {
			pingFails = false;
		}
	});

	it("maps a driver's errors on every action: a base away is a 503, a duplicate a 409, anything else left as it is", async () => {
		await expect(broker.call("vault.fail", { kind: "down" })).rejects.toMatchObject({ name: "BaseUnavailableError", code: 503 });
		await expect(broker.call("vault.fail", { kind: "duplicate" })).rejects.toMatchObject({ code: 409, type: "CONFLICT", message: "The record already exists" });
		await expect(broker.call("vault.fail", { kind: "other" })).rejects.toMatchObject({ name: "RangeError", message: "boom" });
	});
});

describe("mapDriverError", () => {
	it("names the base in the 503 and never passes the driver's message on", () => {
		let thrown: any;
		try {
			mapDriverError("B", Object.assign(new Error("getaddrinfo ENOTFOUND mongo.internal"), { name: "MongoServerSelectionError" }));
		} catch (err) {
			thrown = err;
		}
		expect(thrown).toMatchObject({ code: 503, data: { base: "B" } });
		expect(thrown.message).not.toContain("mongo.internal");
		expect(() => mapDriverError("B", Object.assign(new Error("E11000 duplicate key"), { code: 11000 }))).toThrow("The record already exists");
	});
});
