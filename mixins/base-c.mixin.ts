import { Client } from "@elastic/elasticsearch";
import type { estypes } from "@elastic/elasticsearch";
import { config, need } from "../config";
import { esNodes } from "../config/elasticsearch";
import { BaseUnavailableError } from "../lib/errors";
import { MAPPINGS, index } from "../lib/base-c/indices";
import type { Mixin, MixinSchema } from "../types/mixin";

/** An error of the Elasticsearch client as read here (a ResponseError carries the status and the server's error). */
type EsError = { name?: string; meta?: { statusCode?: number }; body?: { error?: { type?: string } } } | null | undefined;

/** Elasticsearch errors that mean "Base C is not there or not coping": answer 503, try again later. */
export function isEsUnavailable(err: unknown): boolean {
	const e = err as EsError;
	if ((["ConnectionError", "NoLivingConnectionsError", "TimeoutError", "RequestAbortedError"] as unknown[]).includes(e?.name)) return true;
	return e?.name === "ResponseError" && ([429, 502, 503, 504] as unknown[]).includes(e?.meta?.statusCode);
}

/** What BaseCMixin adds to `this`. */
export interface BaseCThis {
	/** This service's own Elasticsearch client. */
	es: Client;
	/** A client error as the API answers it: 503 when Base C is away or not coping, else as it is. */
	mapEsError(err: unknown): never;
	/** Puts the index templates and indices in place (idempotent). */
	ensureIndices(): Promise<void>;
	/**
	 * The subjects among these erased at or after `since` (ms), each with the moment of its erasure in ms
	 * (docs/erasure.md).
	 */
	erasedSubjects(subjects: Iterable<string>, since: number): Promise<Map<string, number>>;
}

/** Erasures read by one search when a writer checks its batch; more since its oldest message, and it asks by id. */
const RECENT_ERASURES = 1000;

/**
 * The settings of every Base C index: one primary shard, ES_REPLICAS replicas, and writes that wait for
 * ES_WAIT_FOR_ACTIVE_SHARDS active copies of the shard (Elasticsearch answers a write that cannot have them
 * in time with an error, which the writer treats as "Base C unavailable" and retries from JetStream).
 */
export function indexSettings(cfg: Pick<typeof config, "esReplicas" | "esWaitForActiveShards"> = config) {
	return { number_of_shards: 1, number_of_replicas: cfg.esReplicas, refresh_interval: "1s", "write.wait_for_active_shards": cfg.esWaitForActiveShards };
}

/**
 * Transport options of the searches a client waits on: an Elasticsearch that has not answered in 4 s is
 * unavailable (503 with Retry-After at once), not retried into a hang. Frozen for 20 s under load, it
 * left GET /activity and GET /reports without any answer for more than 15 s (found by test/faults.test.ts).
 * Background work (bulk writes, consultations) keeps the client's default of 10 s and one retry.
 */
export const ES_READ = { requestTimeout: 4000, maxRetries: 0 } as const;

/**
 * Base C (Elasticsearch): a client of this service's own, the index templates and indices put in
 * place idempotently at start, a `health` action and errors mapped to 503. Only group base-c's services
 * use it: they hold Elasticsearch's credential and never PSEUDONYM_KEY.
 */
export const BaseCMixin = {
	actions: {
		health: {
			callers: ["api", "operators"],
			visibility: "public",
			async handler() {
				await this.es.cluster.health({ timeout: "2s" }).catch((err: unknown) => this.mapEsError(err));
				return { base: "C", status: "up" };
			}
		}
	},

	hooks: {
		error: {
			"*"(_ctx: unknown, err: unknown) {
				this.mapEsError(err);
			}
		}
	},

	methods: {
		mapEsError(err: unknown): never {
			if (isEsUnavailable(err)) throw new BaseUnavailableError("C");
			throw err;
		},

		async erasedSubjects(subjects: Iterable<string>, since: number): Promise<Map<string, number>> {
			const wanted = new Set(subjects);
			const erased = new Map<string, number>();
			if (wanted.size === 0) return erased;
			// Only erasures at or after the oldest acceptance can drop anything: usually none or a few, found by
			// one small search (a tombstone is searchable once activity.erase's create returned: refresh wait_for).
			const recent = await this.es.search<{ subject: string; erased_at: string }>({
				index: index.erasures(), size: RECENT_ERASURES, track_total_hits: RECENT_ERASURES + 1,
				query: { range: { erased_at: { gte: new Date(since).toISOString() } } }, _source: ["subject", "erased_at"]
			});
			const total = recent.hits.total;
			if ((typeof total === "number" ? total : total?.value ?? 0) <= recent.hits.hits.length) {
				for (const hit of recent.hits.hits) if (hit._source && wanted.has(hit._source.subject)) erased.set(hit._source.subject, Date.parse(hit._source.erased_at));
				return erased;
			}
			// More erasures than that since: each subject by id (a get is real-time).
			const res = await this.es.mget<{ erased_at: string }>({ index: index.erasures(), ids: [...wanted], _source: ["erased_at"] });
			for (const doc of res.docs) {
				if ("error" in doc) throw Object.assign(new Error(`Tombstones unreadable: ${doc.error.type}`), { name: "ResponseError", meta: { statusCode: 503 } });
				if (doc.found && doc._source) erased.set(doc._id, Date.parse(doc._source.erased_at));
			}
			return erased;
		},

		async ensureIndices() {
			for (const [name, mappings] of Object.entries(MAPPINGS) as [keyof typeof MAPPINGS, estypes.MappingTypeMapping][]) {
				const target = index[name]();
				await this.es.indices.putIndexTemplate({
					name: target,
					index_patterns: [target],
					// Replicas and the copies a write waits for come from the settings (ES_REPLICAS, ES_WAIT_FOR_ACTIVE_SHARDS):
					// one replica on the stack's three nodes, none on one local node.
					template: { settings: indexSettings(), mappings }
				});
				const exists = await this.es.indices.exists({ index: target });
				if (!exists) await this.es.indices.create({ index: target }).catch((err: unknown) => {
					if ((err as EsError)?.body?.error?.type !== "resource_already_exists_exception") throw err;
				});
				// An index made before a field was added gets it (adding fields is the one mapping change Elasticsearch allows in place).
				// (Replicas of an index made before ES_REPLICAS changed are an operator's change, as `elastic`: docs/deploy.md.)
				else await this.es.indices.putMapping({ index: target, properties: mappings.properties });
			}
		}
	},

	created() {
		// Every node of the cluster: a request to a node that does not answer is retried on another (maxRetries).
		this.es = new Client({ nodes: esNodes(need(config, "elasticsearchUrl")), requestTimeout: 10_000, maxRetries: 1 });
		// No pseudonym key here: base-c knows people only by the pseudonyms its callers computed (docs/base-c.md).
	},

	async started() {
		// Elasticsearch may still be starting: keep trying rather than failing the whole node.
		for (let attempt = 1; ; attempt++) {
			try {
				await this.ensureIndices();
				return;
			} catch (err) {
				if (attempt >= 60) throw err;
				if (attempt === 1) this.logger.warn("Waiting for Elasticsearch:", (err as EsError)?.name);
				await new Promise(r => setTimeout(r, 1000));
			}
		}
	},

	async stopped() {
		await this.es.close();
	}
} satisfies MixinSchema<BaseCThis> as unknown as Mixin;
