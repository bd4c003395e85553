import { monitorEventLoopDelay } from "node:perf_hooks";
import type { Middleware, ServiceBroker } from "moleculer";

/** How often the gauges take the delay histogram's figures (and start it afresh). */
const WINDOW_MS = 1000;

export const EVENT_LOOP_DELAY_MAX = "process.eventloop.delay.max";
export const EVENT_LOOP_DELAY_P99 = "process.eventloop.delay.p99";

/**
 * The event loop's delay as metrics of the broker (Prometheus at /metrics, `$node.metrics` for
 * operators): the longest and the 99th-percentile delay of the last second, in milliseconds. A node
 * whose loop stalls past the heartbeat timeout is dropped by the mesh; this shows it coming.
 * Moleculer has no such metric of its own; Node measures it (perf_hooks) at almost no cost.
 */
export function EventLoopMiddleware(): Middleware {
	const running = new WeakMap<ServiceBroker, { histogram: ReturnType<typeof monitorEventLoopDelay>; timer: NodeJS.Timeout }>();
	return {
		name: "EventLoop",
		created(broker: ServiceBroker) {
			if (!broker.isMetricsEnabled()) return;
			broker.metrics.register({ name: EVENT_LOOP_DELAY_MAX, type: "gauge", unit: "millisecond", description: "Longest event-loop delay of the last second" });
			broker.metrics.register({ name: EVENT_LOOP_DELAY_P99, type: "gauge", unit: "millisecond", description: "99th percentile of the event-loop delay of the last second" });
		},
		started(broker: ServiceBroker) {
			if (!broker.isMetricsEnabled()) return;
			const histogram = monitorEventLoopDelay({ resolution: 10 });
			histogram.enable();
			const timer = setInterval(() => {
				// The histogram is in nanoseconds; an empty window (no sample yet) reads as 0.
				broker.metrics.set(EVENT_LOOP_DELAY_MAX, histogram.count ? histogram.max / 1e6 : 0);
				broker.metrics.set(EVENT_LOOP_DELAY_P99, histogram.count ? histogram.percentile(99) / 1e6 : 0);
				histogram.reset();
			}, WINDOW_MS);
			timer.unref();
			running.set(broker, { histogram, timer });
		},
		stopped(broker: ServiceBroker) {
			const r = running.get(broker);
			if (!r) return;
			clearInterval(r.timer);
			r.histogram.disable();
			running.delete(broker);
		}
	} as unknown as Middleware;
}
