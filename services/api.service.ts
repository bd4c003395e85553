import { randomUUID } from "node:crypto";
import type { ServerResponse } from "node:http";
import type { Context, ServiceSchema } from "moleculer";
import ApiGateway from "moleculer-web";
import { getAbsoluteFSPath } from "swagger-ui-dist";
import { config, sizeInBytes } from "../config";
import { allowedMethods, API_PREFIX, routeAt, ROUTES, type GatewayRoute } from "../lib/gateway/routes";
import { readNdjson } from "../lib/gateway/ndjson-body";
import { toHttpError } from "../lib/gateway/errors";
import { localize, preferredLanguage } from "../lib/gateway/language";
import { buildOpenApi } from "../lib/openapi";
import { swaggerUiHtml } from "../lib/swagger-ui";
import { scrubText } from "../lib/scrub";
import { prometheusReporter } from "../broker/prometheus.reporter";
import { GatewayMetricsMixin } from "../mixins/gateway-metrics.mixin";
import { MlExportPullMixin } from "../mixins/ml-export-pull.mixin";
import { GatewayAuthMixin, RATE_LIMIT_EXCEEDED, type GatewayRequest as Req } from "../mixins/gateway-auth.mixin";

const { RateLimitExceeded, NotFoundError } = ApiGateway.Errors;

/** Which action answers for each base in /health/ready. */
const READINESS: { base: string; action: string }[] = [
	{ base: "A", action: "audit.health" },
	{ base: "B", action: "profiles.health" },
	{ base: "C", action: "activity.health" }
];

const READINESS_CACHE_MS = 1_000;
const CLIENT_REQUEST_ID = /^[A-Za-z0-9._-]{8,64}$/;

function send(res: ServerResponse, status: number, body: unknown, type = "application/json; charset=utf-8"): void {
	res.statusCode = status;
	res.setHeader("Content-Type", type);
	res.end(typeof body === "string" ? body : JSON.stringify(body));
}

type Next = (err?: unknown) => void;
type Middleware = (req: Req, res: ServerResponse, next: Next) => void;

/**
 * Refuses a request whose body was not read: the connection is closed after the answer, so the rest
 * of a large unauthenticated upload is never received (Node would otherwise read it to keep the
 * connection alive).
 */
function refuse(req: Req, res: ServerResponse, next: Next, err: unknown): void {
	if (req.headers["content-length"] !== undefined || req.headers["transfer-encoding"] !== undefined) res.setHeader("Connection", "close");
	next(err);
}

/**
 * Runs before any body is read: a request without a key, or with one no consumer holds, is a 401
 * that cost no parsing (an unauthenticated 8 MB body is never read into memory). Each such failure
 * counts against the client's address; an address past AUTH_FAILURES_PER_MINUTE gets 429 before its
 * key costs a lookup (a flood of made-up keys reaches neither NATS nor Base A).
 */
function authenticateFirst(this: any, req: Req, res: ServerResponse, next: Next): void {
	// A method the path does not serve is a 404 or 405 at once, key or not, body unread.
	const served = allowedMethods(new URL(req.originalUrl ?? req.url ?? "/", "http://gateway").pathname);
	if (!served.includes(req.method ?? "")) return void this.send404(req, res);
	// A key this gateway already knows costs nothing to check: it is let through whatever its address did.
	if (this.cachedConsumer(req)) return next();
	const address = this.clientAddress(req);
	const perMinute: number = this.settings.authFailuresPerMinute;
	// Counted before the lookup, given back when the key is good: a burst of made-up keys gets no more
	// lookups in flight than the address's budget.
	const wait = this.addressLimiter.take(address, perMinute);
	if (wait > 0) return refuse(req, res, next, new RateLimitExceeded(RATE_LIMIT_EXCEEDED, { retryAfter: wait }));
	this.knownConsumer(req).then(() => {
		this.addressLimiter.refund(address, perMinute);
		next();
	}, (err: unknown) => refuse(req, res, next, err));
}

const bodyParser = (ApiGateway as any).bodyParser;
/** INGEST_BODY_LIMIT in bytes, as body-parser counts it for the JSON bodies of the same routes. */
const INGEST_BODY_BYTES = sizeInBytes(config.ingestBodyLimit);

/**
 * An NDJSON body, read as it arrives and given up past its route's line count or the byte limit
 * (lib/gateway/ndjson-body.ts): the answer closes the connection, so the rest is never received.
 */
function ndjsonBody(req: Req, res: ServerResponse, next: Next): void {
	if ((req.headers["content-type"] ?? "").split(";")[0].trim().toLowerCase() !== "application/x-ndjson") return next();
	const route = routeAt(req.method, new URL(req.originalUrl ?? req.url ?? "/", "http://gateway").pathname);
	readNdjson(req, INGEST_BODY_BYTES, route?.items).then(text => {
		req.body = text;
		next();
	}, err => refuse(req, res, next, err));
}

/**
 * A REST route of the API prefix serving some of the route table, authenticated and scoped. Its body
 * parsers (`parsers`: body-parser's, by media type) run only after the key is known.
 */
function restRoute(name: string, routes: GatewayRoute[], parsers: Middleware[], options: Record<string, unknown> = {}) {
	return {
		name,
		path: API_PREFIX,
		whitelist: routes.map(r => r.action),
		aliases: Object.fromEntries(routes.map(r => [`${r.method} ${r.path}`, r.action])),
		mappingPolicy: "restrict",
		authentication: true,
		authorization: true,
		callOptions: { timeout: config.requestTimeoutMs },
		bodyParsers: false,
		use: [authenticateFirst, ...parsers],
		...options
	};
}

/** The only HTTP edge: REST for API clients, health and metrics for operators, docs for everyone. */
const ApiService: ServiceSchema<any> = {
	name: "api",
	mixins: [ApiGateway as any, GatewayAuthMixin, GatewayMetricsMixin, MlExportPullMixin],

	// moleculer-web's actions that change or list routes are not callable by anyone: the routes are fixed.
	// Its `rest` span would be named and tagged with the URL (a CPF is in it): only the method here;
	// the spans of the actions it calls name the route.
	actions: {
		listAliases: false, addRoute: false, removeRoute: false,
		rest: { tracing: { spanName: (ctx: Context<{ req: Req }>) => `HTTP ${ctx.params.req.method}`, tags: { params: false, meta: false } } } as any
	},

	settings: {
		port: config.port,
		ip: config.host,
		authFailuresPerMinute: config.authFailuresPerMinute,
		trustedProxies: config.trustedProxies,
		// A client's X-Request-Id is kept only if it is harmless; otherwise a new one is made.
		rootCallOptions(options: any, req: Req) {
			const given = req.headers["x-request-id"];
			// Request ids land in the insert-only audit log: one shaped like a CPF is never kept.
			options.requestID = typeof given === "string" && CLIENT_REQUEST_ID.test(given) && scrubText(given) === given ? given : randomUUID();
			// Never re-run the HTTP handler itself: the calls it makes are retried instead.
			options.retries = 0;
		},
		log4XXResponses: false,
		logRequest: "debug",
		logResponse: "debug",
		logRequestParams: null,
		logResponseData: null,
		routes: [
			restRoute("rest", ROUTES.filter(r => !r.rawBody), [bodyParser.json({ strict: true, limit: config.bodyLimit })]),
			// Ingest and batches take big bodies, JSON arrays and NDJSON, passed to the action as sent.
			restRoute("ingest", ROUTES.filter(r => r.rawBody), [bodyParser.json({ strict: true, limit: config.ingestBodyLimit }), ndjsonBody], { mergeParams: false }),
			{
				name: "docs",
				path: "/docs",
				mappingPolicy: "restrict",
				use: [ApiGateway.serveStatic(getAbsoluteFSPath(), { index: false, redirect: false, fallthrough: true })],
				aliases: {
					"GET /"(this: any, _req: Req, res: ServerResponse) {
						send(res, 200, swaggerUiHtml({ specUrl: "/openapi.json", assetsPath: "/docs", title: "credit-mesh API" }), "text/html; charset=utf-8");
					}
				}
			},
			{
				name: "operations",
				path: "/",
				mappingPolicy: "restrict",
				aliases: {
					"GET /health/live"(this: any, _req: Req, res: ServerResponse) {
						send(res, 200, { status: "up", nodeID: this.broker.nodeID });
					},
					async "GET /health/ready"(this: any, _req: Req, res: ServerResponse) {
						const report = await this.readiness();
						send(res, report.status === "up" ? 200 : 503, report);
					},
					async "GET /metrics"(this: any, req: Req, res: ServerResponse) {
						// Given a metrics port of its own (METRICS_PORT: the stack's `monitoring` network), the gateway
						// never serves metrics on the port clients reach.
						const reporter = prometheusReporter(this.broker);
						if (reporter?.hasOwnPort()) return this.sendError(req, res, new NotFoundError("NOT_FOUND"));
						send(res, 200, (await reporter?.scrape()) ?? "", "text/plain; version=0.0.4; charset=utf-8");
					},
					"GET /openapi.json"(this: any, _req: Req, res: ServerResponse) {
						send(res, 200, this.openApi());
					}
				}
			}
		],
		onError(this: any, req: Req, res: ServerResponse, err: any) {
			const language = preferredLanguage(req.headers["accept-language"]);
			const { status, body, retryAfter } = localize(toHttpError(err), language);
			res.setHeader("Content-Language", language);
			res.setHeader("Vary", "Accept-Language");
			if (status >= 500) this.logger[status === 503 ? "warn" : "error"]("Request failed:", req.method, scrubText(req.url ?? ""), err?.name, scrubText(String(err?.message)), "requestID:", req.$ctx?.requestID);
			if (retryAfter) res.setHeader("Retry-After", String(retryAfter));
			if (!res.getHeader("X-Request-ID") && req.$ctx?.requestID) res.setHeader("X-Request-ID", req.$ctx.requestID);
			send(res, status, body);
		}
	},

	created() {
		this.readyCache = { until: 0, report: null as unknown };
	},

	methods: {
		/** moleculer-web logs every 5xx with its stack here; settings.onError logs once, scrubbed. */
		errorHandler(req: Req, res: ServerResponse, err: unknown) {
			this.sendError(req, res, err);
		},

		/**
		 * moleculer-web would route an OPTIONS request as a GET, or as its Access-Control-Request-Method
		 * (running that action). We serve no CORS, so OPTIONS only lists the path's methods.
		 */
		httpHandler(req: Req, res: ServerResponse, next?: unknown) {
			// Answers carry personal data: no cache keeps them, and no browser guesses their type.
			res.setHeader("Cache-Control", "no-store");
			res.setHeader("X-Content-Type-Options", "nosniff");
			this.observeHttp(req, res);
			if (req.method !== "OPTIONS") return (ApiGateway as any).methods.httpHandler.call(this, req, res, next);
			const allow = allowedMethods(new URL(req.url ?? "/", "http://gateway").pathname);
			if (!allow.length) return this.sendError(req, res, new NotFoundError("NOT_FOUND"));
			res.setHeader("Allow", ["OPTIONS", ...allow].join(", "));
			res.statusCode = 204;
			res.end();
		},

		/** No route matched: 405 with `Allow` when the path exists under other methods, else 404. */
		send404(req: Req, res: ServerResponse) {
			// moleculer-web strips the matched route's prefix from req.url; originalUrl is the full path.
			const allow = allowedMethods(new URL(req.originalUrl ?? req.url ?? "/", "http://gateway").pathname);
			if (!allow.length) return this.sendError(req, res, new NotFoundError("NOT_FOUND"));
			res.setHeader("Allow", allow.join(", "));
			const message = `Use ${allow.join(" or ")} on this path`;
			this.sendError(req, res, Object.assign(new Error(message), { code: 405, name: "MethodNotAllowed", type: "METHOD_NOT_ALLOWED" }));
		},

		/**
		 * Readiness is asked by every balancer and probe, with no key: concurrent asks share one check, and
		 * an "up" answer serves for a second. A "down" one is not kept, so recovery shows at once.
		 */
		async readiness() {
			if (this.readyCache.until > Date.now()) return this.readyCache.report;
			this.readyCheck ??= this.checkReadiness().finally(() => (this.readyCheck = null));
			const report = await this.readyCheck;
			if (report.status === "up") this.readyCache = { until: Date.now() + READINESS_CACHE_MS, report };
			return report;
		},

		async checkReadiness() {
			const bases: Record<string, { status: string; reason?: string }> = {};
			await Promise.all(READINESS.map(async ({ base, action }) => {
				try {
					await this.broker.call(action, {}, { timeout: 2000, retries: 0, caller: this.fullName });
					bases[base] = { status: "up" };
				} catch (err: any) {
					bases[base] = { status: "down", reason: err?.type ?? err?.name ?? "unknown" };
				}
			}));
			const transporter = this.broker.transit ? (this.broker.transit.connected ? "up" : "down") : "local";
			const up = Object.values(bases).every(b => b.status === "up") && transporter !== "down";
			return { status: up ? "up" : "down", nodeID: this.broker.nodeID, transporter, bases };
		},

		/** Generated from the route table and the live actions' parameter schemas. */
		openApi() {
			const actionSchemas: Record<string, any> = {};
			for (const item of this.broker.registry.getActionList({ onlyAvailable: false, skipInternal: true, withEndpoints: false })) {
				actionSchemas[item.name] = (item.action as { paramsSchema?: unknown } | undefined)?.paramsSchema;
			}
			return buildOpenApi({
				title: "credit-mesh API",
				version: "1.0.0",
				description: "Brazilian credit data behind one gateway. Authenticate with `Authorization: Bearer <api key>`; each route names its scope.",
				prefix: API_PREFIX,
				routes: ROUTES,
				actionSchemas,
				extraPaths: {
					"/health/live": { get: { summary: "Liveness", tags: ["Operations"], security: [], responses: { 200: { description: "The gateway runs" } } } },
					"/health/ready": { get: { summary: "Readiness, per base", tags: ["Operations"], security: [], responses: { 200: { description: "Every base is up" }, 503: { description: "A base or the transporter is down" } } } },
					// Documented where it is served: not when the node has a metrics port of its own.
					...(!prometheusReporter(this.broker)?.hasOwnPort() && {
						"/metrics": { get: { summary: "Prometheus metrics", tags: ["Operations"], security: [], responses: { 200: { description: "Prometheus text format", content: { "text/plain": { schema: { type: "string" } } } } } } }
					})
				}
			});
		}
	}
};

export default ApiService;
