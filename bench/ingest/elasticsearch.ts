// Elasticsearch for the ingest benchmark: counts and shard statistics of an ingest, the raw sides'
// indices, a check of documents against their records, and the removal of what a run wrote.
import { randomBytes, randomInt } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { Client } from "@elastic/elasticsearch";
import { MAPPINGS } from "../../lib/base-c/indices";
import type { MovementRecord } from "../../lib/base-c/movement";
import { fmt } from "../lib/report";

/** What a run writes to Elasticsearch: every index under its own prefix, dropped at the end (dropRunIndices). */
export interface RunData {
	es?: Client;
	/** The prefix of every index this run writes: the mesh's (ES_INDEX_PREFIX) and the raw sides'. */
	runPrefix?: string;
}

/** Documents of the given subjects in an index, after a refresh. */
export async function countBySubjects(es: Client, index: string, subjects: string[]): Promise<number> {
	await es.indices.refresh({ index });
	return (await es.count({ index, query: { terms: { subject: subjects } } })).count;
}

interface EsStats { bulkRequests: number; bulkMs: number; bulkBytes: number; docsIndexed: number; indexingMs: number; refreshes: number }

export async function esStats(es: Client, index: string): Promise<EsStats> {
	const res: any = await es.indices.stats({ index, metric: ["bulk", "indexing", "refresh"] });
	const p = res.indices[index].primaries;
	return {
		bulkRequests: p.bulk?.total_operations ?? NaN, bulkMs: p.bulk?.total_time_in_millis ?? NaN, bulkBytes: p.bulk?.total_size_in_bytes ?? NaN,
		docsIndexed: p.indexing.index_total, indexingMs: p.indexing.index_time_in_millis, refreshes: p.refresh.total
	};
}

/** What Elasticsearch did for one ingest: shard-level bulk requests, their size and time, and that time against the wall clock. */
export function esDelta(a: EsStats, b: EsStats, wallSeconds: number) {
	const bulkRequests = b.bulkRequests - a.bulkRequests;
	const docs = b.docsIndexed - a.docsIndexed;
	const bulkMs = b.bulkMs - a.bulkMs;
	return {
		bulkRequests, docs, docsPerBulk: docs / bulkRequests, bulkMs, msPerBulk: bulkMs / bulkRequests,
		kibPerBulk: (b.bulkBytes - a.bulkBytes) / bulkRequests / 1024, indexingMs: b.indexingMs - a.indexingMs,
		refreshes: b.refreshes - a.refreshes,
		/** Share of the wall time a bulk request was being executed on the shard (> 100 % when several overlap). */
		bulkBusyPct: (bulkMs / (wallSeconds * 1000)) * 100
	};
}
export type EsDelta = ReturnType<typeof esDelta>;

export const esText = (d: EsDelta) => `ES: ${d.bulkRequests} bulk requests of ${fmt(d.docsPerBulk, 0)} docs (${fmt(d.kibPerBulk, 0)} KiB), ${fmt(d.msPerBulk, 1)} ms each on the shard, ` +
	`${fmt(d.bulkMs / 1000)} s in bulk = ${fmt(d.bulkBusyPct, 0)} % of the wall time; indexing ${fmt(d.indexingMs / 1000)} s; ${d.refreshes} refreshes`;

/** An index like `${prefix}-movements`: the same mappings (lib/base-c/indices.ts) and the template's settings. */
export async function createRawIndex(es: Client, prefix: string, what: string): Promise<string> {
	const index = `${prefix}-raw-${what}-${randomBytes(4).toString("hex")}`;
	await es.indices.create({ index, settings: { number_of_shards: 1, number_of_replicas: 0, refresh_interval: "1s" }, mappings: MAPPINGS.movements as any });
	return index;
}

/** A few documents read back by id must be the records, field for field (received_at aside). */
export async function checkDocuments(es: Client, index: string, records: MovementRecord[]): Promise<void> {
	const sample = Array.from({ length: 5 }, () => records[randomInt(records.length)]);
	const { docs } = await es.mget<any>({ index, ids: sample.map(r => r.movement_id) });
	docs.forEach((d: any, i) => {
		const { received_at: receivedAt, ...rest } = d._source ?? {};
		if (!d.found || JSON.stringify(rest) !== JSON.stringify(sample[i]) || Number.isNaN(Date.parse(receivedAt))) {
			throw new Error(`${index}: document ${sample[i].movement_id} is not the record:\n es     ${JSON.stringify(d._source)}\n record ${JSON.stringify(sample[i])}`);
		}
	});
}

/** Waits (90 s at most) for Elasticsearch to answer: someone may be restarting it (tests of an outage do). */
async function esAnswering(es: Client): Promise<boolean> {
	for (const until = Date.now() + 90_000; Date.now() < until; await sleep(1000)) {
		// (This node answers GET / with 405, so no es.ping(): the health the services' readiness asks.)
		if (await es.cluster.health({ timeout: "2s" }).then(() => true, () => false)) return true;
	}
	return false;
}

/**
 * Drops every index under the run's prefix, by name (Elasticsearch refuses wildcard deletes by default);
 * called once the mesh is stopped, since its writer would create them again.
 */
export async function dropRunIndices(es: Client, prefix: string): Promise<void> {
	if (!(await esAnswering(es))) throw new Error("Elasticsearch did not answer for 90 s");
	const indices = (await es.cat.indices({ index: `${prefix}-*`, format: "json", h: "index" })).map(row => row.index!).filter(Boolean);
	for (const index of indices) await es.indices.delete({ index }, { ignore: [404] });
	if (indices.length) console.log(`dropped the run's indices: ${indices.join(", ")}`);
}
