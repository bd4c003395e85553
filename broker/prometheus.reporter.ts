import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { MetricReporters, type ServiceBroker } from "moleculer";
import { listenAddress } from "../config/addresses";

/** Something measured when Prometheus asks (a query to JetStream, the bases' health), not on a timer. */
export type Collector = () => Promise<void>;

/** How long one collector may take before the scrape answers with the values it had. */
const COLLECT_TIMEOUT_MS = 2_000;

const collectors = new WeakMap<ServiceBroker, Set<Collector>>();

/** Runs `collect` before each scrape of this broker's metrics; returns what removes it. */
export function onScrape(broker: ServiceBroker, collect: Collector): () => void {
	let set = collectors.get(broker);
	if (!set) collectors.set(broker, (set = new Set()));
	set.add(collect);
	return () => set.delete(collect);
}

/**
 * Prometheus exposition. A node serves it on a port of its own when given one (METRICS_PORT: in the
 * stack, every group, on the `monitoring` network), so every group can be scraped and a node without
 * one opens no port at all; without one, the gateway serves it at /metrics on its HTTP port (local runs).
 * Values that cost a query are measured at scrape time by the collectors registered with onScrape.
 */
export class InProcessPrometheusReporter extends (MetricReporters.Prometheus as any) {
	server?: Server;

	init(registry: any): void {
		(MetricReporters.Base as any).prototype.init.call(this, registry);
		this.defaultLabels = { namespace: registry.broker.namespace, nodeID: registry.broker.nodeID };
		if (this.opts.ownPort === undefined || this.opts.ownPort === null) return;
		const server = createServer((req, res) => {
			if (req.method !== "GET" || (req.url ?? "").split("?")[0] !== "/metrics") {
				res.statusCode = 404;
				return void res.end();
			}
			this.scrape().then(body => {
				res.setHeader("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
				res.end(body);
			}, () => {
				res.statusCode = 500;
				res.end();
			});
		});
		this.server = server;
		server.listen(this.opts.ownPort, listenAddress(this.opts.ownHost ?? "127.0.0.1"), () => {
			const { address, port } = server.address() as AddressInfo;
			registry.broker.logger.info(`Prometheus metrics at http://${address}:${port}/metrics`);
		});
	}

	/** Whether this node serves its metrics on a port of its own (then the gateway's HTTP port does not). */
	hasOwnPort(): boolean {
		return this.opts.ownPort !== undefined && this.opts.ownPort !== null;
	}

	/** The port of this node's own metrics server, once listening (tests ask for port 0). */
	ownPort(): number | undefined {
		return (this.server?.address() as AddressInfo | null)?.port;
	}

	stop(): Promise<void> {
		const server = this.server;
		this.server = undefined;
		return new Promise(resolve => (server ? server.close(() => resolve()) : resolve()));
	}

	render(): string {
		return this.generatePrometheusResponse();
	}

	/** Runs the collectors (each bounded in time; one that fails leaves its last values), then renders. */
	async scrape(): Promise<string> {
		const broker: ServiceBroker = this.registry.broker;
		await Promise.allSettled([...(collectors.get(broker) ?? [])].map(collect => {
			let timer: NodeJS.Timeout | undefined;
			return Promise.race([collect(), new Promise(r => (timer = setTimeout(r, COLLECT_TIMEOUT_MS)))]).finally(() => clearTimeout(timer));
		}));
		return this.render();
	}
}

/** The reporter's type name in the broker options; registered by name so each broker gets its own instance. */
export const IN_PROCESS_PROMETHEUS = "InProcessPrometheus";

export function registerPrometheusReporter(): void {
	(MetricReporters as any).register(IN_PROCESS_PROMETHEUS, InProcessPrometheusReporter);
}

/** The broker's Prometheus reporter, if metrics are on. */
export function prometheusReporter(broker: ServiceBroker): InProcessPrometheusReporter | undefined {
	return (broker.metrics as any)?.reporter?.find((r: unknown) => r instanceof InProcessPrometheusReporter);
}
