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

// Registered by name so each broker gets its own instance (tests run several brokers in one process).
(MetricReporters as any).register("InProcessPrometheus", InProcessPrometheusReporter);
