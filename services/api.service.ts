import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { type BlockList, isIP, isIPv4 } from "node:net";
import type { Context, ServiceSchema } from "moleculer";
import ApiGateway from "moleculer-web";
import { getAbsoluteFSPath } from "swagger-ui-dist";
import { config } from "../config";
import { parseAddressList } from "../config/addresses";
import { allowedMethods, API_PREFIX, ROUTES, type GatewayRoute } from "../lib/gateway/routes";
import { toHttpError } from "../lib/gateway/errors";
import { localize, preferredLanguage } from "../lib/gateway/language";
import { RateLimiter } from "../lib/gateway/rate-limit";
import { buildOpenApi, IDEMPOTENCY_KEY_PATTERN } from "../lib/openapi";
import { swaggerUiHtml } from "../lib/swagger-ui";
import { scrubText } from "../lib/scrub";
import { prometheusReporter } from "../broker/prometheus.reporter";
import { GatewayMetricsMixin } from "../mixins/gateway-metrics.mixin";
import { normalizeCpf } from "../lib/cpf";
import { InvalidFieldError } from "../lib/errors";

const { UnAuthorizedError, ForbiddenError, RateLimitExceeded, NotFoundError, ERR_NO_TOKEN, ERR_INVALID_TOKEN } = ApiGateway.Errors as any;

type Req = IncomingMessage & { originalUrl?: string; $alias?: any; $ctx?: Context<any, any>; $params?: any; body?: unknown };

/** Which action answers for each base in /health/ready. */
const READINESS: { base: string; action: string }[] = [
	{ base: "A", action: "audit.health" },
	{ base: "B", action: "profiles.health" },
	{ base: "C", action: "activity.health" }
];

const routeByKey = new Map(ROUTES.map(r => [`${r.method} ${r.action}`, r]));
/** Keys remembered by a gateway, and how long one that is unknown stays so. */
const AUTH_CACHE_SIZE = 10_000;
const UNKNOWN_KEY_CACHE_MS = 5_000;
const READINESS_CACHE_MS = 1_000;
/** How long a request waits for the shared rate limit before this gateway's own is used instead. */
const SHARED_LIMIT_TIMEOUT_MS = 1_000;
const BEARER = /^Bearer ([A-Za-z0-9_-]{16,256})$/;
const CLIENT_REQUEST_ID = /^[A-Za-z0-9._-]{8,64}$/;
const IDEMPOTENCY_KEY = new RegExp(IDEMPOTENCY_KEY_PATTERN);
/** The request header stating a consultation's purpose (docs/consultation-purpose.md), lower-cased as Node gives headers. */
const PURPOSE_HEADER = "finalidade";

function send(res: ServerResponse, status: number, body: unknown, type = "application/json; charset=utf-8"): void {
	res.statusCode = status;
	res.setHeader("Content-Type", type);
	res.end(typeof body === "string" ? body : JSON.stringify(body));
}

type Next = (err?: unknown) => void;

/** `::ffff:10.0.0.5` (an IPv4 client on a dual-stack socket) as `10.0.0.5`. */
const unmapped = (address: string) => (address.startsWith("::ffff:") && isIPv4(address.slice(7)) ? address.slice(7) : address);

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
	if (wait > 0) return refuse(req, res, next, new RateLimitExceeded({ retryAfter: wait }));
	this.knownConsumer(req).then(() => {
		this.addressLimiter.refund(address, perMinute);
		next();
	}, (err: unknown) => refuse(req, res, next, err));
}

/**
 * A REST route of the API prefix serving some of the route table, authenticated and scoped. Its body
 * parsers (`parsers`: body-parser's, by media type) run only after the key is known.
 */
function restRoute(name: string, routes: GatewayRoute[], parsers: Record<string, object>, options: Record<string, unknown> = {}) {
	const bodyParser = (ApiGateway as any).bodyParser;
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
		use: [authenticateFirst, ...Object.entries(parsers).map(([kind, opts]) => bodyParser[kind](opts))],
		...options
	};
}

/** The only HTTP edge: REST for API clients, health and metrics for operators, docs for everyone. */
const ApiService: ServiceSchema<any> = {
	name: "api",
	mixins: [ApiGateway as any, GatewayMetricsMixin],

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
			restRoute("rest", ROUTES.filter(r => !r.rawBody), { json: { strict: true, limit: config.bodyLimit } }),
			// Ingest takes big bodies, JSON arrays and NDJSON, passed to the action as sent.
			restRoute("ingest", ROUTES.filter(r => r.rawBody), {
				json: { strict: true, limit: config.ingestBodyLimit },
				text: { type: "application/x-ndjson", limit: config.ingestBodyLimit }
			}, { mergeParams: false }),
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
					async "GET /metrics"(this: any, _req: Req, res: ServerResponse) {
						send(res, 200, (await prometheusReporter(this.broker)?.scrape()) ?? "", "text/plain; version=0.0.4; charset=utf-8");
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
		this.consumerCache = new Map<string, { consumer: any; until: number }>();
		this.readyCache = { until: 0, report: null as unknown };
		// The consumers' limit when the shared one is out of reach; the addresses' limit always (docs/rate-limits.md).
		this.rateLimiter = new RateLimiter();
		this.sharedLimitWarned = 0;
		this.addressLimiter = new RateLimiter();
		// Settings travel to other nodes as JSON: the list is kept there as text and parsed here.
		this.trustedProxies = parseAddressList(this.settings.trustedProxies);
	},

	events: {
		// A revoked key stops working at once on every gateway, not when the cache expires.
		"consumers.revoked"(this: any) {
			this.consumerCache.clear();
		},
		// Changed purposes too: the cached caller token carries the old ones.
		"consumers.changed"(this: any) {
			this.consumerCache.clear();
		}
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
			if (!allow.length) return this.sendError(req, res, new NotFoundError());
			res.setHeader("Allow", ["OPTIONS", ...allow].join(", "));
			res.statusCode = 204;
			res.end();
		},

		/** No route matched: 405 with `Allow` when the path exists under other methods, else 404. */
		send404(req: Req, res: ServerResponse) {
			// moleculer-web strips the matched route's prefix from req.url; originalUrl is the full path.
			const allow = allowedMethods(new URL(req.originalUrl ?? req.url ?? "/", "http://gateway").pathname);
			if (!allow.length) return this.sendError(req, res, new NotFoundError());
			res.setHeader("Allow", allow.join(", "));
			const message = `Use ${allow.join(" or ")} on this path`;
			this.sendError(req, res, Object.assign(new Error(message), { code: 405, name: "MethodNotAllowed", type: "METHOD_NOT_ALLOWED" }));
		},

		async authenticate(ctx: Context<any, any>, _route: unknown, req: Req) {
			const consumer = await this.knownConsumer(req);
			// Only the signed token speaks for the consumer beyond the gateway.
			ctx.meta.callerToken = consumer.token;
			return consumer;
		},

		/**
		 * The client's address: the socket's, or, on a connection from our proxy (TRUSTED_PROXIES: the
		 * stack's TLS edge), the address it appended to X-Forwarded-For. Anyone else's X-Forwarded-For is
		 * ignored, and so is what a client wrote there before our proxy appended.
		 */
		clientAddress(req: Req): string {
			const socket = unmapped(req.socket.remoteAddress ?? "unknown");
			if (!isIP(socket) || !(this.trustedProxies as BlockList).check(socket, isIPv4(socket) ? "ipv4" : "ipv6")) return socket;
			const forwarded = unmapped(String(req.headers["x-forwarded-for"] ?? "").split(",").pop()?.trim() ?? "");
			return isIP(forwarded) ? forwarded : socket;
		},

		/** The consumer of the request's key (cached), or 401. */
		async knownConsumer(req: Req) {
			const header = req.headers.authorization;
			if (!header) throw new UnAuthorizedError(ERR_NO_TOKEN);
			const match = BEARER.exec(header);
			if (!match) throw new UnAuthorizedError(ERR_INVALID_TOKEN);
			const consumer = await this.consumerFor(match[1]);
			if (!consumer) throw new UnAuthorizedError(ERR_INVALID_TOKEN);
			return consumer;
		},

		async authorize(ctx: Context<any, any>, _route: unknown, req: Req) {
			const route = this.routeOf(req);
			// moleculer-web hands authenticate's answer over as meta.user; past this point the caller has one
			// name, the signed ctx.meta.callerToken (ctx.locals.caller once verified), so it is not sent on.
			const consumer = ctx.meta.user;
			delete ctx.meta.user;
			// Fail closed: a route without a scope in the table is reachable by nobody.
			if (!route || !consumer.scopes.includes(route.scope)) {
				throw new ForbiddenError("ERR_MISSING_SCOPE", { required: route?.scope ?? null });
			}
			const wait = await this.takeRequest(ctx, consumer);
			if (wait > 0) throw new RateLimitExceeded({ retryAfter: wait });
			// Only now, so a caller without a key or scope learns nothing about the request's shape.
			this.checkRequest(ctx, req, route);
		},

		/**
		 * One request from the consumer's token bucket, shared by every gateway (consumers.take in Base A:
		 * docs/rate-limits.md); 0, or the seconds to wait. Base A out of reach: this gateway's own bucket,
		 * so the API keeps serving the other bases with a limit per replica meanwhile.
		 */
		async takeRequest(ctx: Context<any, any>, consumer: { id: string; rateLimit: number }): Promise<number> {
			try {
				const { wait }: { wait: number } = await this.broker.call("consumers.take", {}, { parentCtx: ctx, caller: this.fullName, timeout: SHARED_LIMIT_TIMEOUT_MS, retries: 0 });
				return wait;
			} catch (err: any) {
				if (Date.now() > this.sharedLimitWarned + 60_000) {
					this.sharedLimitWarned = Date.now();
					this.logger.warn("Shared rate limit out of reach; this gateway's own applies meanwhile:", err?.type ?? err?.name);
				}
				return this.rateLimiter.take(consumer.id, consumer.rateLimit);
			}
		},

		checkRequest(ctx: Context<any, any>, req: Req, route: GatewayRoute) {
			this.checkBody(req, route);
			this.checkPathParamsInBody(req);
			// The stated purpose travels to the consulting node, which checks it against the caller token (ConsultationMiddleware).
			const finalidade = req.headers[PURPOSE_HEADER];
			if (typeof finalidade === "string") ctx.meta.finalidade = finalidade.trim();
			const key = req.headers["idempotency-key"];
			if (typeof key === "string" && route.idempotent) ctx.meta.idempotency = { key: this.checkIdempotencyKey(key), action: route.action };
		},

		routeOf(req: Req): GatewayRoute | undefined {
			return routeByKey.get(`${req.$alias?.method} ${req.$alias?.action}`);
		},

		/** The consumer of the request's key when this gateway knows it already, else undefined. */
		cachedConsumer(req: Req) {
			const match = BEARER.exec(req.headers.authorization ?? "");
			const hit = match ? this.consumerCache.get(match[1]) : undefined;
			return hit && hit.until > Date.now() ? hit.consumer ?? undefined : undefined;
		},

		/** Consumers by key, cached briefly so a request does not cost a Base A round trip. */
		async consumerFor(key: string) {
			const now = Date.now();
			const hit = this.consumerCache.get(key);
			if (hit && hit.until > now) return hit.consumer;
			const consumer: any = await this.broker.call("consumers.authenticate", { key }, { caller: this.fullName });
			// Bounded, oldest out first: a flood of unknown keys never evicts all the good ones at once.
			while (this.consumerCache.size >= AUTH_CACHE_SIZE) this.consumerCache.delete(this.consumerCache.keys().next().value);
			// Never past the caller token's own expiry (less a request's time to run); an unknown key only briefly.
			const ttl = consumer ? Math.min(config.authCacheSeconds * 1000, config.callerTokenSeconds * 1000 - config.requestTimeoutMs) : UNKNOWN_KEY_CACHE_MS;
			this.consumerCache.delete(key);
			this.consumerCache.set(key, { consumer, until: now + ttl });
			return consumer;
		},

		/** Bodies of other media types than the route accepts are refused before they reach a service. */
		checkBody(req: Req, route: GatewayRoute) {
			if (!["POST", "PUT", "PATCH"].includes(req.method ?? "")) return;
			// No body at all (a POST that only triggers, like a delivery's replay): no media type to refuse.
			const length = req.headers["content-length"];
			if (req.headers["transfer-encoding"] === undefined && (length === undefined || length === "0")) return;
			const accepts = route.accepts ?? ["application/json"];
			const type = (req.headers["content-type"] ?? "").split(";")[0].trim().toLowerCase();
			if (!accepts.includes(type)) {
				throw Object.assign(new Error(`Send the body as ${accepts.join(" or ")}`), { code: 415, name: "UnsupportedMediaType", type: "UNSUPPORTED_MEDIA_TYPE" });
			}
		},

		/** A body may repeat a path parameter (payload B carries its cpf) but must not contradict it. */
		checkPathParamsInBody(req: Req) {
			const body = req.body as Record<string, unknown> | undefined;
			if (!body || typeof body !== "object") return;
			for (const { name } of req.$alias?.keys ?? []) {
				if (!(name in body)) continue;
				const inPath = req.$params?.[name];
				const same = name === "cpf" ? normalizeCpf(body[name]) !== null && normalizeCpf(body[name]) === normalizeCpf(inPath) : body[name] === inPath;
				if (!same) throw new InvalidFieldError(name, `'${name}' in the body must match the path.`, "pathMismatch");
			}
		},

		checkIdempotencyKey(key: string): string {
			if (!IDEMPOTENCY_KEY.test(key)) {
				throw Object.assign(new Error("Idempotency-Key must be 1–128 characters of letters, digits and . _ : -"), { code: 400, name: "BadRequestError", type: "INVALID_IDEMPOTENCY_KEY" });
			}
			return key;
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
					"/metrics": { get: { summary: "Prometheus metrics", tags: ["Operations"], security: [], responses: { 200: { description: "Prometheus text format", content: { "text/plain": { schema: { type: "string" } } } } } } }
				}
			});
		}
	}
};

export default ApiService;
