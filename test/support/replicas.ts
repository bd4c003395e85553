import { type ChildProcess, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import os from "node:os";
import path from "node:path";
import { type Config, config } from "../../config";
import { enginesEnv } from "../../bench/lib/engines";
import { observerBroker } from "../../bench/lib/mesh";
import { alive, freePort, spawnLogged, stopChild } from "../../bench/lib/processes";
import { SERVICE_GROUPS, type ServiceGroup } from "../../config/groups";
import { deleteStreams, engines } from "./mesh";

export { freePort };

/** The service groups of docker-stack.yml that run services, one Swarm service each. */
export type Group = ServiceGroup;

export interface Replica {
	group: Group;
	index: number;
	nodeID: string;
	child: ChildProcess;
	/** The gateway's port (api replicas only). */
	port?: number;
}

export interface ReplicatedMesh {
	namespace: string;
	/** The gateways' base URLs, one per api replica. */
	bases: string[];
	replicas: Replica[];
	logFile: string;
	/** `kill -9` of one replica; resolves once the process is gone. */
	kill(group: Group, index: number): Promise<Replica>;
	/** Starts a killed replica again, under the same node id; resolves once the mesh sees it. */
	restart(group: Group, index: number): Promise<Replica>;
	/** The replicas still running. */
	running(): Replica[];
	stop(): Promise<void>;
}

/**
 * The production path with replicas: `npm run build`, then every service group of docker-stack.yml
 * as `replicas` moleculer-runner processes (NODE_ENV=production, over the real NATS, in a namespace of
 * this mesh alone); each api replica listens on a port of its own on 127.0.0.1. Resolves when every
 * node is seen on the namespace and every gateway answers /health/ready with 200. `env` is added to
 * every process's environment (e.g. an Elasticsearch index prefix of its own).
 */
export async function startReplicatedMesh(o: {
	replicas?: number; build?: boolean; timeoutMs?: number; env?: Record<string, string>; name?: string;
	/** Only these groups (default: every one); `ready: false` then skips the gateways' /health/ready, which needs every base. */
	groups?: Group[]; ready?: boolean;
	/**
	 * The settings of `engines.sh env <profile> --group <group>` (default "test"; "test --cluster": the local
	 * NATS and Elasticsearch clusters), and `cfg`, the same settings as this process reads them, for the
	 * observer that waits for the nodes and for the streams' removal (default: this process's config).
	 */
	profile?: string; cfg?: Config;
} = {}): Promise<ReplicatedMesh> {
	const cfg = o.cfg ?? config;
	const replicas = o.replicas ?? 2;
	const timeoutMs = o.timeoutMs ?? 90_000;
	if (o.build !== false) execFileSync("npm", ["run", "--silent", "build"], { stdio: "inherit", timeout: 120_000 });
	const namespace = `test-${o.name ?? "faults"}-${randomBytes(3).toString("hex")}`;
	const logFile = path.join(os.tmpdir(), `credit-mesh-${namespace}.log`);
	const list: Replica[] = [];
	const spawnOf = new Map<Replica, () => ChildProcess>();
	for (const group of o.groups ?? (Object.keys(SERVICE_GROUPS) as Group[])) {
		// Each group runs as it does in the stack: its own NATS user and mesh key only.
		const groupEnv = enginesEnv(process.cwd(), `${o.profile ?? "test"} --group ${group}`);
		for (let index = 0; index < replicas; index++) {
			const port = group === "api" ? await freePort() : undefined;
			const nodeID = `${group}-${index}-${namespace}`;
			const env = {
				...process.env, ...groupEnv, NODE_ENV: "production", SERVICEDIR: "dist/services", SERVICES: SERVICE_GROUPS[group].join(","), NAMESPACE: namespace,
				NODE_ID: nodeID, PORT: String(port ?? 0), HOST: "127.0.0.1", LOG_LEVEL: "warn", LOG_FORMAT: "short", ...o.env
			};
			const start = () => spawnLogged(process.execPath, ["node_modules/moleculer/bin/moleculer-runner.js", "--config", "dist/moleculer.config.js"], env, process.cwd(), logFile);
			const replica = { group, index, nodeID, child: start(), port };
			list.push(replica);
			spawnOf.set(replica, start);
		}
	}
	const bases = list.filter(r => r.port).map(r => `http://127.0.0.1:${r.port}`);
	const mesh: ReplicatedMesh = {
		namespace,
		bases,
		replicas: list,
		logFile,
		async kill(group, index) {
			const r = list.find(x => x.group === group && x.index === index);
			if (!r) throw new Error(`no replica ${group}#${index}`);
			if (alive(r.child)) {
				const gone = new Promise<void>(resolve => r.child.once("exit", () => resolve()));
				r.child.kill("SIGKILL");
				await gone;
			}
			return r;
		},
		async restart(group, index) {
			const r = list.find(x => x.group === group && x.index === index);
			if (!r) throw new Error(`no replica ${group}#${index}`);
			if (!alive(r.child)) r.child = spawnOf.get(r)!();
			await waitForNodes(namespace, cfg, [r.nodeID], timeoutMs, () => {
				if (!alive(r.child)) throw new Error(`replica ${r.nodeID} exited during start-up; log: ${logFile}`);
			});
			return r;
		},
		running: () => list.filter(r => alive(r.child)),
		async stop() {
			await Promise.all(list.map(r => stopChild(r.child)));
			await deleteStreams(namespace, cfg).catch(() => undefined);
		}
	};
	try {
		await waitForNodes(namespace, cfg, list.map(r => r.nodeID), timeoutMs, () => {
			const dead = list.find(r => !alive(r.child));
			if (dead) throw new Error(`replica ${dead.nodeID} exited during start-up; log: ${logFile}`);
		});
		const until = Date.now() + timeoutMs;
		for (const base of o.ready === false ? [] : bases) {
			for (;;) {
				const res = await fetch(`${base}/health/ready`, { signal: AbortSignal.timeout(3000) }).catch(() => null);
				if (res?.status === 200) break;
				if (Date.now() > until) throw new Error(`${base}/health/ready is not 200 after ${timeoutMs} ms (${res?.status ?? "no answer"}); log: ${logFile}`);
				await new Promise(r => setTimeout(r, 300));
			}
		}
	} catch (err) {
		await mesh.stop();
		throw err;
	}
	return mesh;
}

/** Waits until every node id is seen, available, on the namespace (a short-lived observer broker). */
async function waitForNodes(namespace: string, cfg: Config, nodeIDs: string[], timeoutMs: number, check: () => void): Promise<void> {
	const observer = observerBroker(namespace, "observer", cfg);
	await observer.start();
	try {
		const until = Date.now() + timeoutMs;
		for (;;) {
			check();
			const nodes: { id: string; available: boolean }[] = await observer.call("$node.list");
			const up = new Set(nodes.filter(n => n.available).map(n => n.id));
			const missing = nodeIDs.filter(id => !up.has(id));
			if (missing.length === 0) return;
			if (Date.now() > until) throw new Error(`nodes not seen after ${timeoutMs} ms: ${missing.join(", ")}`);
			await new Promise(r => setTimeout(r, 300));
		}
	} finally {
		await observer.stop();
	}
}

/** The pid of an engine's server process (scripts/engines.sh pid). */
export async function enginePid(engine: "postgres" | "mongo" | "nats" | "elasticsearch"): Promise<number> {
	const pid = Number(await engines("pid", engine));
	if (!Number.isInteger(pid) || pid <= 1) throw new Error(`engines.sh pid ${engine}: no pid`);
	return pid;
}
