import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BrokerOptions, ServiceBroker } from "moleculer";
import { dump } from "js-yaml";
import { groupOf } from "../../config/groups";
import { prometheusReporter } from "../../broker/prometheus.reporter";
import type { Mesh } from "./mesh";

/** Debian's binaries (scripts/prometheus.sh installs them). */
export const PROMETHEUS = process.env.PROMETHEUS_PATH ?? "/usr/bin/prometheus";
export const PROMTOOL = process.env.PROMTOOL_PATH ?? "/usr/bin/promtool";

/** Broker options for startMesh: every node serves its metrics on a port of its own (0: any free one), as the stack's groups do. */
export const OWN_METRICS_PORTS: Partial<BrokerOptions> = {
	metrics: { enabled: true, reporter: [{ type: "InProcessPrometheus", options: { ownPort: 0 } } as any] }
};

/** A free TCP port on loopback (Prometheus takes no port 0). */
export function freePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const srv = createServer();
		srv.once("error", reject);
		srv.listen(0, "127.0.0.1", () => {
			const { port } = srv.address() as { port: number };
			srv.close(() => resolve(port));
		});
	});
}

/** Each service group's scrape targets in a test mesh started with OWN_METRICS_PORTS: the nodes' own metrics ports, the gateway's too. */
export function meshTargets(mesh: Mesh): Record<string, string[]> {
	const targets: Record<string, string[]> = {};
	for (const broker of mesh.brokers as ServiceBroker[]) {
		const service = broker.services.find(s => !s.name.startsWith("$"))!;
		const group = groupOf(service.name)!;
		(targets[group] ??= []).push(`127.0.0.1:${prometheusReporter(broker)!.ownPort()}`);
	}
	return targets;
}

export interface RunningPrometheus {
	url: string;
	/** GET on Prometheus's HTTP API; the `data` of its answer. */
	get<T = any>(path: string): Promise<T>;
	stop(): Promise<void>;
}

/**
 * A real Prometheus on loopback with its storage in a temporary directory: the given rule files,
 * each group's targets as job `credit-mesh-<group>` (the jobs of docker/prometheus/prometheus.yml),
 * short scrape and evaluation intervals.
 */
export async function startPrometheus(opts: { targets: Record<string, string[]>; rules: string[]; scrapeSeconds: number; evaluationSeconds: number }): Promise<RunningPrometheus> {
	const dir = mkdtempSync(join(tmpdir(), "credit-mesh-prometheus-"));
	const ruleFiles = opts.rules.map((text, i) => {
		const file = join(dir, `rules-${i}.yml`);
		writeFileSync(file, text);
		return file;
	});
	writeFileSync(join(dir, "prometheus.yml"), dump({
		global: { scrape_interval: `${opts.scrapeSeconds}s`, scrape_timeout: `${opts.scrapeSeconds}s`, evaluation_interval: `${opts.evaluationSeconds}s` },
		rule_files: ruleFiles,
		scrape_configs: Object.entries(opts.targets).map(([group, targets]) => ({ job_name: `credit-mesh-${group}`, static_configs: [{ targets }] }))
	}));
	const port = await freePort();
	const child: ChildProcess = spawn(PROMETHEUS, [
		`--config.file=${join(dir, "prometheus.yml")}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${port}`,
		"--web.console.templates=/nonexistent", "--web.console.libraries=/nonexistent", "--log.level=warn"
	], { stdio: ["ignore", "ignore", "pipe"] });
	let log = "";
	child.stderr!.on("data", chunk => (log = (log + chunk).slice(-4000)));
	const url = `http://127.0.0.1:${port}`;
	const stop = async () => {
		if (child.exitCode === null) {
			const exited = new Promise(r => child.once("exit", r));
			child.kill("SIGTERM");
			await exited;
		}
		rmSync(dir, { recursive: true, force: true });
	};
	const until = Date.now() + 30_000;
	for (;;) {
		const ready = await fetch(`${url}/-/ready`).then(r => r.ok, () => false);
		if (ready) break;
		if (child.exitCode !== null || Date.now() > until) {
			await stop();
			throw new Error(`prometheus did not start: ${log}`);
		}
		await new Promise(r => setTimeout(r, 200));
	}
	return {
		url,
		async get(path: string) {
			const res = await fetch(url + path);
			const body = (await res.json()) as { status: string; data: unknown; error?: string };
			if (body.status !== "success") throw new Error(`${path}: ${body.error}`);
			return body.data as any;
		},
		stop
	};
}
