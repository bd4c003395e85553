import type { BrokerOptions } from "moleculer";
import { config, need } from "./config";
import { transporterOptions } from "./config/nats";
import { createValidator } from "./lib/validator";
import { scrubText, scrubValue } from "./lib/scrub";
import { IN_PROCESS_PROMETHEUS, registerPrometheusReporter } from "./broker/prometheus.reporter";
import { tracingOptions } from "./broker/tracing";
import { IdempotencyMiddleware } from "./middlewares/idempotency.middleware";
import { ParamsSchemaMiddleware } from "./middlewares/params-schema.middleware";
import { SentryMiddleware } from "./middlewares/sentry.middleware";
import { ZeroTrustMiddleware } from "./middlewares/zero-trust.middleware";
import { AuditMiddleware } from "./middlewares/audit.middleware";
import { ConsultationMiddleware } from "./middlewares/consultation.middleware";
import { HttpStatusMiddleware } from "./middlewares/http-status.middleware";
import { ChannelsMiddleware } from "./middlewares/channels.middleware";
import { EventLoopMiddleware } from "./middlewares/event-loop.middleware";
import { LivenessMiddleware } from "./middlewares/liveness.middleware";

registerPrometheusReporter();

/**
 * The single broker configuration, used by moleculer-runner (`SERVICES` picks the services of a
 * process), by `npm start` and by the tests.
 */
const brokerConfig: BrokerOptions = {
	namespace: config.namespace,
	nodeID: config.nodeId,
	// A production broker must be part of a mesh; a local one (development) may run alone.
	transporter: transporterOptions(config, config.env === "production" ? need(config, "transporter") : config.transporter) as BrokerOptions["transporter"],
	serializer: "JSON",

	logger: {
		type: "Console",
		options: {
			level: config.logLevel,
			colors: config.logFormat !== "json",
			moduleColors: false,
			// Every line is scrubbed of anything shaped like a CPF, and personal fields are redacted.
			formatter(this: any, type: string, args: unknown[], bindings: Record<string, string>, { printArgs }: any) {
				const msg = scrubText(printArgs(args.map(a => scrubValue(a))).join(" "));
				if (config.logFormat === "json") {
					return [JSON.stringify({ ts: new Date().toISOString(), level: type, msg, nodeID: bindings.nodeID, mod: bindings.mod })];
				}
				return [`[${new Date().toISOString()}] ${type.toUpperCase().padEnd(5)} ${bindings.nodeID}/${bindings.mod?.toUpperCase()}: ${msg}`];
			}
		}
	},

	requestTimeout: config.requestTimeoutMs,
	// Only errors flagged retryable (a node gone, a timeout) are retried; a base being down is answered at once with 503.
	retryPolicy: { enabled: true, retries: 3, delay: 100, maxDelay: 1000, factor: 2, check: (err: any) => !!err?.retryable },
	maxCallLevel: 20,
	// A node killed without a goodbye is dropped within about two seconds by LivenessMiddleware (NATS knows it is gone),
	// at the latest after heartbeatTimeout; its pending calls are then rejected and retried elsewhere.
	heartbeatInterval: config.heartbeatInterval,
	heartbeatTimeout: config.heartbeatTimeout,
	contextParamsCloning: false,
	tracking: { enabled: true, shutdownTimeout: 5000 },
	registry: { strategy: "RoundRobin", preferLocal: true },
	circuitBreaker: {
		enabled: true,
		threshold: 0.5,
		minRequestCount: 20,
		windowTime: 30,
		halfOpenTime: 5_000,
		// Client errors (4xx) say nothing about a node's health.
		check: (err: any) => err && (!err.code || err.code >= 500)
	},
	bulkhead: { enabled: true, concurrency: 64, maxQueueSize: 1000 },
	validator: createValidator() as any,
	errorHandler: null as any,

	// /metrics on the gateway's port; on a port of its own (METRICS_PORT) for the other groups (docs/deploy.md, section 8).
	metrics: { enabled: true, reporter: [{ type: IN_PROCESS_PROMETHEUS as "Prometheus", options: { ownPort: config.metricsPort, ownHost: config.metricsHost } as any }] },
	// Spans never carry params, meta or responses: they hold personal data. Exported to Zipkin only when ZIPKIN_URL is set.
	tracing: tracingOptions(config.zipkinUrl),

	// What an action declares is enforced here, on every node. Each one wraps those before it: ZeroTrust checks the
	// caller before anything runs; a replayed Idempotency answer runs (and audits, counts, sets) nothing again; the
	// status is set before the answer is stored. Sentry is inert without SENTRY_DSN.
	middlewares: [
		ChannelsMiddleware(), EventLoopMiddleware(), LivenessMiddleware(), ParamsSchemaMiddleware, HttpStatusMiddleware, ConsultationMiddleware, AuditMiddleware, IdempotencyMiddleware,
		SentryMiddleware({ dsn: config.sentryDsn, environment: config.sentryEnvironment }), ZeroTrustMiddleware
	]
};

export = brokerConfig;
