// Helpers of test/cluster.test.ts: the local engine clusters (`engines.sh up --cluster`), their settings,
// which node leads what, and a movement ingest that retries as a client should and records what it saw.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";
import { Client } from "@elastic/elasticsearch";
import { connect } from "nats";
import { type Config, loadConfig, need } from "../../config";
import { esNodes } from "../../config/elasticsearch";
import { natsOptions } from "../../config/nats";
import { channel } from "../../lib/mesh/streams";
import { enginesEnv } from "../../bench/lib/engines";
import { movementDocId } from "./acknowledged";

/** The cluster parts this file's tests use (`engines.sh up --cluster nats elasticsearch`; PostgreSQL's pair has its own test). */
export const PARTS = ["nats", "elasticsearch"];

/** scripts/engines.sh … --cluster, with a bound long enough for three Elasticsearch nodes starting on two cores. */
export async function clusterEngines(...args: string[]): Promise<string> {
	const { stdout } = await promisify(execFile)("bash", ["scripts/engines.sh", ...args, "--cluster"], { timeout: 420_000 });
	return stdout.trim();
}

/** True when every node of both clusters runs (`status --cluster`). */
export async function clustersRunning(): Promise<boolean> {
	const lines = (await clusterEngines("status")).split("\n").filter(l => /^(nats|es)-cluster\//.test(l));
	return lines.length === 6 && lines.every(l => /\brunning\b/.test(l));
}

/** The settings of `engines.sh env test --cluster`, as a process of every group reads them. */
export function clusterConfig(): Config {
	return loadConfig({ ...process.env, ...enginesEnv(process.cwd(), "test --cluster") });
}

/** A client of every node of the Elasticsearch cluster. */
export function clusterEs(cfg: Config): Client {
	return new Client({ nodes: esNodes(need(cfg, "elasticsearchUrl")), requestTimeout: 30_000, maxRetries: 3 });
}

/** The pid of cluster node `node` (1-3) of `part` (nats or es). */
export async function clusterPid(part: "nats" | "es", node: number): Promise<number> {
	const pid = Number(await clusterEngines("pid", part, String(node)));
	if (!Number.isInteger(pid) || pid <= 1) throw new Error(`engines.sh pid --cluster ${part} ${node}: no pid`);
	return pid;
}

/** JetStream facts of a namespace's stream: its replicas, the node leading it (1-3) and its consumers' replicas. */
export async function streamPlacement(cfg: Config, namespace: string, key: "transactions"): Promise<{ replicas: number; leader: number; peers: number; consumers: { name: string; peers: number }[] }> {
	const nc = await connect(natsOptions(cfg));
	try {
		const jsm = await nc.jetstreamManager();
		const name = channel(namespace, key).name;
		const info = await jsm.streams.info(name);
		const consumers = [];
		for await (const c of jsm.consumers.list(name)) consumers.push({ name: c.name, peers: 1 + (c.cluster?.replicas?.length ?? 0) });
		const leader = Number(/_n(\d+)$/.exec(info.cluster?.leader ?? "")?.[1] ?? 0);
		return { replicas: info.config.num_replicas, leader, peers: 1 + (info.cluster?.replicas?.length ?? 0), consumers };
	} finally {
		await nc.close();
	}
}

/** The node (1-3) holding the primary of an index's shard 0. */
export async function primaryNode(es: Client, index: string): Promise<number> {
	const shards = await es.cat.shards({ index, format: "json" }) as unknown as { prirep: string; node: string | null; state: string }[];
	const primary = shards.find(s => s.prirep === "p" && s.state === "STARTED");
	return Number(/^c(\d+)$/.exec(primary?.node ?? "")?.[1] ?? 0);
}

export interface Movement { cpf: string; tipo: string; valor: number; data: string; id: string }

export interface IngestResult {
	/** Movements of batches answered 202. */
	acknowledged: Movement[];
	/** Every movement sent, acknowledged or not. */
	sent: Movement[];
	/** Answer (or "network"/"timeout") → attempts, over every attempt. */
	attempts: Record<string, number>;
	/** Final answer of each batch → batches. */
	finals: Record<string, number>;
	/** Batches that needed more than one attempt. */
	retried: number;
	/** 503s without the gateway's documented body or Retry-After (first 5). */
	undocumented: string[];
}

/**
 * Sends `total` movements of the given CPFs in batches of `batch` from `clients` concurrent clients to one
 * gateway. A 503 is retried after its Retry-After (2 s at most), a connection failure or a 20 s time-out
 * after 500 ms, each with the same body (the movements' ids make a resent batch harmless), up to
 * `attempts` times. `onAcknowledged` hears the running count of acknowledged movements.
 */
export async function ingestMovements(o: {
	base: string; key: string; cpfs: string[]; total: number; batch: number; clients: number; attempts: number; tag: string;
	onAcknowledged?: (n: number) => void;
}): Promise<IngestResult> {
	const r: IngestResult = { acknowledged: [], sent: [], attempts: {}, finals: {}, retried: 0, undocumented: [] };
	const batches: Movement[][] = [];
	for (let i = 0; i < o.total; i += o.batch) {
		batches.push(Array.from({ length: Math.min(o.batch, o.total - i) }, (_, j) => ({
			cpf: o.cpfs[(i + j) % o.cpfs.length], tipo: (i + j) % 2 ? "pix" : "ted", valor: 1 + ((i + j) % 997), data: "2025-03-04", id: `${o.tag}-${i + j}`
		})));
	}
	const count = (m: Record<string, number>, k: string) => void (m[k] = (m[k] ?? 0) + 1);
	let next = 0;
	const client = async () => {
		while (next < batches.length) {
			const movements = batches[next++];
			r.sent.push(...movements);
			let final = "none";
			for (let attempt = 1; attempt <= o.attempts; attempt++) {
				if (attempt === 2) r.retried++;
				let res: Response;
				try {
					res = await fetch(`${o.base}/api/v1/transactions`, {
						method: "POST", body: JSON.stringify(movements), signal: AbortSignal.timeout(20_000),
						headers: { authorization: `Bearer ${o.key}`, "content-type": "application/json" }
					});
				} catch (err) {
					final = (err as Error)?.name === "TimeoutError" ? "timeout" : "network";
					count(r.attempts, final);
					await sleep(500);
					continue;
				}
				const text = await res.text();
				final = String(res.status);
				count(r.attempts, final);
				if (res.status !== 503) break;
				let body: { code?: unknown; name?: unknown; message?: unknown; type?: unknown } | null = null;
				try {
					body = JSON.parse(text);
				} catch {
					// not JSON: undocumented
				}
				const retryAfter = Number(res.headers.get("retry-after"));
				if (!(retryAfter > 0 && body?.code === 503 && typeof body.name === "string" && typeof body.message === "string" && typeof body.type === "string") && r.undocumented.length < 5) {
					r.undocumented.push(`${res.headers.get("retry-after")} ${text.slice(0, 200)}`);
				}
				await sleep(Math.min(2000, (retryAfter || 1) * 1000));
			}
			count(r.finals, final);
			if (final === "202") {
				r.acknowledged.push(...movements);
				o.onAcknowledged?.(r.acknowledged.length);
			}
		}
	};
	await Promise.all(Array.from({ length: o.clients }, client));
	return r;
}

/**
 * How many of the acknowledged movements Base C holds, and whether each of these persons' documents is one
 * of the movements sent, once: `extra` counts documents of theirs that are not (a second copy under another id).
 */
export async function countInCluster(es: Client, index: string, subjects: string[], result: IngestResult): Promise<{ found: number; extra: number }> {
	await es.indices.refresh({ index });
	const ids = (ms: Movement[]) => [...new Set(ms.map(m => movementDocId(m.cpf, m.id)))];
	let found = 0;
	const acked = ids(result.acknowledged);
	for (let i = 0; i < acked.length; i += 5000) found += (await es.count({ index, query: { ids: { values: acked.slice(i, i + 5000) } } })).count;
	const sent = ids(result.sent);
	let ofSent = 0;
	for (let i = 0; i < sent.length; i += 5000) ofSent += (await es.count({ index, query: { ids: { values: sent.slice(i, i + 5000) } } })).count;
	const theirs = (await es.count({ index, query: { terms: { subject: subjects } } })).count;
	return { found, extra: theirs - ofSent };
}
