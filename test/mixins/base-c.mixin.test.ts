import { ServiceBroker, type ServiceSchema } from "moleculer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BaseCMixin, ES_READ, indexSettings, isEsUnavailable } from "../../mixins/base-c.mixin";
import { index, MAPPINGS } from "../../lib/base-c/indices";
import { withEs } from "../support/es";

/** An error as @elastic/elasticsearch raises it: its name, and the HTTP status of a ResponseError. */
const esError = (name: string, statusCode?: number) => Object.assign(new Error(name), { name, meta: statusCode ? { statusCode } : undefined });

describe("isEsUnavailable", () => {
	it("takes a connection lost, a timeout or an overloaded cluster for an outage", () => {
		for (const name of ["ConnectionError", "NoLivingConnectionsError", "TimeoutError", "RequestAbortedError"]) expect(isEsUnavailable(esError(name)), name).toBe(true);
		for (const status of [429, 502, 503, 504]) expect(isEsUnavailable(esError("ResponseError", status)), String(status)).toBe(true);
	});

	it("leaves the other answers alone: a bad query or a missing index is no outage", () => {
		for (const status of [400, 404, 409, 500]) expect(isEsUnavailable(esError("ResponseError", status)), String(status)).toBe(false);
		expect(isEsUnavailable(new Error("boom"))).toBe(false);
		expect(isEsUnavailable(undefined)).toBe(false);
	});

	it("gives the searches a client waits on 4 s and no retry", () => {
		expect(ES_READ).toEqual({ requestTimeout: 4000, maxRetries: 0 });
	});
});

// BaseCMixin on an in-process broker against the real Base C (Elasticsearch).
describe("BaseCMixin", () => {
	let broker: ServiceBroker;
	const Searcher: ServiceSchema = {
		name: "base-c-searcher",
		mixins: [BaseCMixin],
		actions: {
			search: { params: { index: "string" }, handler(this: any, ctx: any) { return this.es.search({ index: ctx.params.index, query: { match_all: {} } }, ES_READ).then(() => true); } }
		}
	};

	beforeAll(async () => {
		broker = new ServiceBroker({ transporter: null, nodeID: `base-c-mixin-${process.pid}`, logger: false });
		broker.createService(Searcher);
		await broker.start();
	});
	afterAll(async () => {
		await broker?.stop();
	});

	it("puts its indices in place at start, each with its strict mapping", async () => {
		for (const [name, mapping] of Object.entries(MAPPINGS) as [keyof typeof MAPPINGS, (typeof MAPPINGS)[keyof typeof MAPPINGS]][]) {
			const target = index[name]();
			const found = await withEs(es => es.indices.getMapping({ index: target }));
			expect(found[target].mappings).toMatchObject({ dynamic: "strict", properties: mapping.properties });
		}
	});

	it("gives each index the replicas and the active copies a write waits for that the settings name (one local node: none, 1)", async () => {
		expect(indexSettings({ esReplicas: 1, esWaitForActiveShards: "all" })).toMatchObject({ number_of_replicas: 1, "write.wait_for_active_shards": "all" });
		for (const name of Object.keys(MAPPINGS) as (keyof typeof MAPPINGS)[]) {
			const target = index[name]();
			const found = await withEs(es => es.indices.getSettings({ index: target }));
			expect(found[target].settings?.index, target).toMatchObject({ number_of_shards: "1", number_of_replicas: "0", write: { wait_for_active_shards: "1" } });
		}
	});

	it("answers health when Elasticsearch answers", async () => {
		expect(await broker.call("base-c-searcher.health")).toEqual({ base: "C", status: "up" });
	});

	it("leaves an error that is not an outage as it is (a missing index is a 404, not a 503)", async () => {
		expect(await broker.call("base-c-searcher.search", { index: index.movements() })).toBe(true);
		await expect(broker.call("base-c-searcher.search", { index: "credit-test-no-such-index" })).rejects.toMatchObject({ name: "ResponseError", meta: { statusCode: 404 } });
	});
});
