import type { IncomingMessage, ServerResponse } from "node:http";
import type { ServiceSchema } from "moleculer";
import { onScrape } from "../broker/prometheus.reporter";
import { routeTemplate } from "../lib/gateway/routes";

/** Every answer of the gateway: by route (its template, never the path), method and status. */
export const HTTP_REQUESTS = "credit_mesh.http.requests.total";
/** How long the gateway took to answer, by route and method (seconds, Prometheus' unit). */
export const HTTP_DURATION = "credit_mesh.http.request.duration.seconds";
/** 1 when the base answered its health action at the last scrape, else 0 (as /health/ready reports it). */
export const BASE_UP = "credit_mesh.base.up";

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

interface Readiness { bases: Record<string, { status: string }> }

/**
 * The gateway's own metrics, beside Moleculer's: per-route HTTP rate, errors and latency (what
 * clients see, including answers no action gave: 401, 404, 429), and each base's health, measured
 * when Prometheus scrapes (the service's `readiness()`, cached a second, as /health/ready uses it).
 */
export const GatewayMetricsMixin: ServiceSchema = {
	name: "gateway-metrics",
	created() {
		const metrics = this.broker.metrics;
		if (!this.broker.isMetricsEnabled()) return;
		metrics.register({ name: HTTP_REQUESTS, type: "counter", labelNames: ["route", "method", "status"], description: "HTTP answers of the gateway" });
		metrics.register({ name: HTTP_DURATION, type: "histogram", labelNames: ["route", "method"], buckets: BUCKETS, unit: "second", description: "HTTP answer time of the gateway" } as any);
		metrics.register({ name: BASE_UP, type: "gauge", labelNames: ["base"], description: "Base answering its health action (1) or not (0)" });
	},
	started() {
		if (!this.broker.isMetricsEnabled()) return;
		this.stopCollecting = onScrape(this.broker, async () => {
			const report: Readiness = await this.readiness();
			for (const [base, { status }] of Object.entries(report.bases)) this.broker.metrics.set(BASE_UP, status === "up" ? 1 : 0, { base });
		});
	},
	stopped() {
		this.stopCollecting?.();
	},
	methods: {
		/** Counts the answer once it is sent (a closed connection counts as status 499, nginx's "client closed"). */
		observeHttp(req: IncomingMessage & { originalUrl?: string }, res: ServerResponse) {
			if (!this.broker.isMetricsEnabled()) return;
			const started = process.hrtime.bigint();
			const method = req.method ?? "OTHER";
			const done = () => {
				res.off("finish", done).off("close", done);
				const route = routeTemplate(new URL(req.originalUrl ?? req.url ?? "/", "http://gateway").pathname);
				const status = res.writableFinished ? String(res.statusCode) : "499";
				this.broker.metrics.increment(HTTP_REQUESTS, { route, method, status });
				this.broker.metrics.observe(HTTP_DURATION, Number(process.hrtime.bigint() - started) / 1e9, { route, method });
			};
			res.on("finish", done).on("close", done);
		}
	}
};
