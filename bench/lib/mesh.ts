// The mesh as child processes of the benchmark: started in a namespace of its own, ready when its
// gateway and its services say so, watched by an observer node, stopped; its log's warnings, and its
// JetStream streams, which outlive it and are deleted at the end.
import { randomBytes } from "node:crypto";
import type { ChildProcess } from "node:child_process";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { type BrokerOptions, ServiceBroker } from "moleculer";
import { type ConnectionOptions, type NatsConnection, connect as natsConnect } from "nats";
import type { Config } from "../../config";
import { SERVICE_GROUPS } from "../../config/groups";
import { natsOptions, transporterOptions } from "../../config/nats";
import { createZeroTrustMiddleware } from "../../middlewares/zero-trust.middleware";
import { STREAMS, type StreamKey, channel } from "../../lib/mesh/streams";
import { loopbackOnly } from "./engines";
import type { BenchState } from "./state";
import { alive, freePort, spawnLogged, stopChild, tail } from "./processes";

export interface MeshProc { pid: number; name: string; child: ChildProcess }
interface MeshGroup { name: string; args: string[]; env: NodeJS.ProcessEnv }

/**
 * How the mesh runs: `stack`, one process per service group as docker-stack.yml deploys it (calls
 * between groups cross NATS; the default); `split`, one process per service (every call crosses NATS);
 * `one-process`, everything in one (Moleculer's preferLocal keeps every call in-process).
 */
export type MeshShape = "stack" | "split" | "one-process";

/** The command-line flags that choose the shape (scripts/args.ts parseFlags specs), and the shape they choose. */
export const SHAPE_FLAGS = {
	/** One process per service: every call crosses NATS. */
	split: { type: "boolean" },
	/** Everything in one process: no call crosses NATS. */
	oneProcess: { type: "boolean", flag: "one-process" }
} as const;
export function shapeOf(flags: { split?: boolean; oneProcess?: boolean }): MeshShape {
	if (flags.split && flags.oneProcess) throw new Error("--split and --one-process exclude each other");
	return flags.split ? "split" : flags.oneProcess ? "one-process" : "stack";
}
export const SHAPE_LABELS: Record<MeshShape, string> = {
	stack: "one process per service group, as docker-stack.yml deploys it",
	split: "one process per service",
	"one-process": "one process"
};

/** moleculer-runner as child processes: the named services (default: every service of a group) in the given shape. */
function meshGroups(env: NodeJS.ProcessEnv, o: { shape: MeshShape; services?: string[] }): MeshGroup[] {
	const wanted = new Set(o.services ?? Object.values(SERVICE_GROUPS).flat());
	const sets = o.shape === "one-process" ? [[...wanted]]
		: o.shape === "split" ? [...wanted].map(s => [s])
		: Object.values(SERVICE_GROUPS).map(group => group.filter(s => wanted.has(s))).filter(set => set.length > 0);
	const grouped = new Set(sets.flat());
	const stray = [...wanted].filter(s => !grouped.has(s));
	if (stray.length) throw new Error(`not a service of any group (config/groups.ts): ${stray.join(", ")}`);
	return sets.map(set => ({ name: set.join(","), args: [], env: { ...env, SERVICEDIR: "dist/services", SERVICES: set.join(",") } }));
}

interface MeshOptions {
	shape: MeshShape;
	/** Start only these services (default: every service of config/groups.ts). */
	services?: string[];
	/** Services that must be seen on the namespace before the run goes on. */
	waitFor: string[];
	/** Accept a 503 from /health/ready when this says the bases needed are up. */
	acceptPartial?: (report: any) => boolean;
	/** Appended to start-up errors (a hint at an option). */
	hint?: string;
}

/**
 * For a mesh started with only the services a benchmark needs: ready when Bases A and B and the
 * transporter are up, whatever the gateway reports for bases whose services were not started.
 */
export const basesAandBUp = (report: any): boolean =>
	report?.bases?.A?.status === "up" && report?.bases?.B?.status === "up" && report?.transporter !== "down";

interface Mesh { base: string; port: number; namespace: string; logFile: string; procs: MeshProc[]; lastReady: string }

/**
 * Starts the mesh as child processes on a free port of 127.0.0.1 with `NAMESPACE=bench-<random>`
 * (so it meets no other mesh on the shared NATS) and `LOG_LEVEL=warn` (`BENCH_LOG_LEVEL` to change it), logging to
 * `$TMPDIR/credit-mesh-<namespace>.log`, and waits until it is ready.
 */
export async function launchMesh(state: BenchState, root: string, env: NodeJS.ProcessEnv, cfg: Config, o: MeshOptions): Promise<Mesh> {
	if (o.shape !== "one-process" && !cfg.transporter) throw new Error(`a mesh of ${SHAPE_LABELS[o.shape]} needs a transporter (TRANSPORTER or TRANSPORTER_FILE)`);
	const port = await freePort();
	const namespace = `bench-${randomBytes(4).toString("hex")}`;
	state.namespace = namespace;
	state.transporter = cfg.transporter;
	state.natsCa = cfg.natsCa;
	const logFile = path.join(os.tmpdir(), `credit-mesh-${namespace}.log`);
	// The audit chain's maintenance must not run inside the measurement over rows that earlier runs left in
	// the shared database: no full verification (hourly, and once at start: AUDIT_VERIFY_SECONDS=0), and the
	// first checkpoint of the new namespace (which verifies every row since the chain began, as a new deployment
	// must) is waited for before any measurement (waitReady). Checkpoints every 5 s afterwards verify each new
	// row once, as every 60 s would.
	const meshEnv: NodeJS.ProcessEnv = {
		...env, PORT: String(port), HOST: "127.0.0.1", LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? "warn", NAMESPACE: namespace, NODE_ENV: "development",
		AUDIT_VERIFY_SECONDS: "0", AUDIT_CHECKPOINT_SECONDS: "5"
	};
	console.log(`starting the mesh: namespace ${namespace}, port ${port}, log ${logFile}`);
	const runner = [path.join(root, "node_modules/moleculer/bin/moleculer-runner.js"), "--config", "dist/moleculer.config.js"];
	const procs = meshGroups(meshEnv, o).map(g => {
		// BENCH_NODE_ARGS: Node options for the mesh's processes, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to profile them.
		const nodeArgs = process.env.BENCH_NODE_ARGS?.split(" ").filter(Boolean) ?? [];
		const child = spawnLogged(process.execPath, [...nodeArgs, ...runner, ...g.args], g.env, root, logFile);
		state.children.push(child);
		child.once("exit", (code, signal) => {
			if (!state.meshStopping) console.error(`mesh process (${g.name}) exited early (${code ?? signal}); log: ${logFile}`);
		});
		return { pid: child.pid ?? -1, name: g.name.replace(/\.service\.js$/, ""), child };
	});
	const base = `http://127.0.0.1:${port}`;
	const lastReady = await waitReady(state, { base, natsUrl: cfg.transporter, namespace, logFile, cfg, ...o });
	return { base, port, namespace, logFile, procs, lastReady };
}

/**
 * GET /health/ready = 200 (or a 503 that acceptPartial takes), 60 s at most. Then every service of
 * waitFor must be seen on the namespace (the admin key is upserted in consumers.started, which
 * readiness does not cover). Returns the last readiness answer.
 */
async function waitReady(state: BenchState, o: MeshOptions & { base: string; natsUrl: string | undefined; namespace: string; logFile: string; cfg: Config }): Promise<string> {
	const until = Date.now() + 60_000;
	const hint = o.hint ?? "";
	let last = "no answer";
	let ready = false;
	while (!ready && Date.now() < until) {
		if (state.children.some(c => !alive(c))) throw new Error(`the mesh exited during start-up${hint}:\n${tail(o.logFile)}`);
		try {
			const res = await fetch(`${o.base}/health/ready`, { signal: AbortSignal.timeout(3000) });
			const text = await res.text();
			last = `${res.status} ${text}`;
			ready = res.status === 200 || (o.acceptPartial?.(JSON.parse(text)) ?? false);
		} catch (err) {
			last = (err as Error).message;
		}
		if (!ready) await sleep(250);
	}
	if (!ready) throw new Error(`GET /health/ready was not ready within 60 s${hint}; last answer: ${last}\n${tail(o.logFile)}`);
	if (o.natsUrl) {
		state.observer = observerBroker(o.namespace, "bench-observer", o.cfg);
		await state.observer.start();
		await state.observer.waitForServices(o.waitFor, Math.max(1000, until - Date.now()), 200);
		await state.observer.stop();
		state.observer = undefined;
		// Whenever the mesh runs the audit service, whatever the benchmark waits for.
		if ((o.services ?? Object.values(SERVICE_GROUPS).flat()).includes("audit")) await firstCheckpoint(o.cfg, o.namespace);
	}
	return last;
}

/** Waits (10 minutes at most) for the audit service's first checkpoint on the namespace: its catch-up verification done. */
async function firstCheckpoint(cfg: Config, namespace: string): Promise<void> {
	const started = Date.now();
	const nc = await natsConnection(cfg, `credit-mesh-bench-${process.pid}`);
	try {
		const jsm = await nc.jetstreamManager({ timeout: 5000 });
		const name = channel(namespace, "auditCheckpoints").name;
		while (((await jsm.streams.info(name).catch(() => null))?.state.messages ?? 0) === 0) {
			if (Date.now() - started > 600_000) throw new Error("no audit checkpoint within 10 minutes of start");
			await sleep(500);
		}
	} finally {
		await nc.close();
	}
	const seconds = (Date.now() - started) / 1000;
	if (seconds > 1) console.log(`  waited ${seconds.toFixed(1)} s for the audit chain's first checkpoint (its verification of the rows earlier runs left)`);
}

/** A node that only watches a mesh's namespace. It beats like the mesh's nodes (HEARTBEAT_*), or they drop it. */
export function observerBroker(namespace: string, name: string, cfg: Config): ServiceBroker {
	// It calls $node actions of the mesh's nodes, which answer operators only: it signs as one.
	return new ServiceBroker({
		namespace, nodeID: `${name}-${randomBytes(3).toString("hex")}`, transporter: transporterOptions(cfg) as BrokerOptions["transporter"], serializer: "JSON", logger: false,
		heartbeatInterval: cfg.heartbeatInterval, heartbeatTimeout: cfg.heartbeatTimeout,
		metadata: { meshGroup: "operators" }, middlewares: [createZeroTrustMiddleware(cfg)]
	});
}

/** A NATS connection to the transporter's server (JetStream management), which must be on 127.0.0.1. */
export async function natsConnection(cfg: Pick<Config, "transporter" | "natsCa">, name: string, more: Partial<ConnectionOptions> = {}): Promise<NatsConnection> {
	const transporter = cfg.transporter ?? "";
	const url = new URL(transporter);
	loopbackOnly(url, "TRANSPORTER");
	return natsConnect({ ...natsOptions(cfg, transporter), name, maxReconnectAttempts: 3, ...more });
}

/** A mesh's JetStream streams: every stream of lib/mesh/streams.ts under the namespace's prefix (`<ns>_TRANSACTIONS`, `<ns>_CONSULTATIONS`…). */
export function namespaceStreams(namespace: string): string[] {
	if (!namespace) throw new Error("no namespace"); // channel() would name the streams of the namespace "default"
	return (Object.keys(STREAMS) as StreamKey[]).map(k => channel(namespace, k).name);
}

/** Deletes the named JetStream streams; returns the names of those that were there. */
export async function deleteStreams(nc: NatsConnection, names: string[]): Promise<string[]> {
	const jsm = await nc.jetstreamManager({ timeout: 5000 });
	const deleted: string[] = [];
	for (const name of names) if (await jsm.streams.delete(name).catch(() => false)) deleted.push(name);
	return deleted;
}

/**
 * Deletes the streams the benchmark's mesh created on the NATS server (they outlive the mesh: each
 * run's namespace would otherwise leave its own, CONSULTATIONS filling up with nobody to consume it).
 */
export async function removeMeshStreams(state: BenchState): Promise<void> {
	if (!state.namespace || !state.transporter) return;
	const nc = await natsConnection({ transporter: state.transporter, natsCa: state.natsCa }, `credit-mesh-bench-${process.pid}`);
	try {
		const gone = await deleteStreams(nc, namespaceStreams(state.namespace));
		if (gone.length) console.log(`deleted the mesh's JetStream streams: ${gone.join(", ")}`);
	} finally {
		await nc.close();
	}
}


export async function stopMesh(state: BenchState): Promise<void> {
	state.meshStopping = true;
	await Promise.all(state.children.map(c => stopChild(c)));
}

/** The lines at level warn or above in the mesh's log. */
export function meshWarnings(logFile: string): string[] {
	return tail(logFile, 100000).split("\n").filter(l => l && /"level":"(warn|error|fatal)"|\b(WARN|ERROR|FATAL)\b/.test(l));
}
