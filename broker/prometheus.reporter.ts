import { MetricReporters } from "moleculer";

/**
 * Prometheus exposition without a second HTTP server: the gateway serves it at /metrics,
 * so no extra port is opened on any node.
 */
export class InProcessPrometheusReporter extends (MetricReporters.Prometheus as any) {
	init(registry: any): void {
		(MetricReporters.Base as any).prototype.init.call(this, registry);
		this.defaultLabels = { namespace: registry.broker.namespace, nodeID: registry.broker.nodeID };
	}

	stop(): Promise<void> {
		return Promise.resolve();
	}

	render(): string {
		return this.generatePrometheusResponse();
	}
}

/** The reporter's type name in the broker options; registered by name so each broker gets its own instance. */
export const IN_PROCESS_PROMETHEUS = "InProcessPrometheus";

export function registerPrometheusReporter(): void {
	(MetricReporters as any).register(IN_PROCESS_PROMETHEUS, InProcessPrometheusReporter);
}
