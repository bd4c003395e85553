import type { IncomingMessage } from "node:http";
import type { BlockList } from "node:net";
import type { Context } from "moleculer";
import ApiGateway from "moleculer-web";
import { config } from "../config";
import { parseAddressList } from "../config/addresses";
import { ROUTES, type GatewayRoute } from "../lib/gateway/routes";
import { RateLimiter } from "../lib/gateway/rate-limit";
import { type Grant, TokenLeases } from "../lib/gateway/token-leases";
import { checkBody, checkIdempotencyKey, checkPathParamsInBody, clientAddress } from "../lib/gateway/request-checks";
import type { Mixin, MixinSchema } from "../types/mixin";

const { UnAuthorizedError, ForbiddenError, RateLimitExceeded, ERR_NO_TOKEN, ERR_INVALID_TOKEN } = ApiGateway.Errors;

export type GatewayRequest = IncomingMessage & {
	originalUrl?: string;
	$alias?: { method?: string; action?: string; keys?: { name: string }[] };
	$ctx?: Context;
	$params?: Record<string, unknown>;
	body?: unknown;
};

/** What consumers.authenticate answers for a key (null: no consumer holds it). */
export interface KnownConsumer { id: string; scopes: string[]; rateLimit: number; token: string }

type GatewayContext = Context<unknown, Record<string, any>>;

/** Keys remembered by a gateway, and how long one that is unknown stays so. */
const AUTH_CACHE_SIZE = 10_000;
const UNKNOWN_KEY_CACHE_MS = 5_000;
/** How long a request waits for the shared rate limit before this gateway's own is used instead. */
const SHARED_LIMIT_TIMEOUT_MS = 1_000;
const BEARER = /^Bearer ([A-Za-z0-9_-]{16,256})$/;
/** The request header stating a consultation's purpose (docs/consultation-purpose.md), lower-cased as Node gives headers. */
const PURPOSE_HEADER = "finalidade";
/** moleculer-web's RateLimitExceeded takes (type, data): the wait travels in data, as Retry-After reads it. */
export const RATE_LIMIT_EXCEEDED = "RATE_LIMIT_EXCEEDED";
const routeByKey = new Map(ROUTES.map(r => [`${r.method} ${r.action}`, r]));

interface GatewayAuthThis {
	consumerCache: Map<string, { consumer: KnownConsumer | null; until: number }>;
	rateLimiter: RateLimiter;
	tokenLeases: TokenLeases;
	addressLimiter: RateLimiter;
	sharedLimitWarned: number;
	trustedProxies: BlockList;
	settings: { trustedProxies: string };
	knownConsumer(req: GatewayRequest): Promise<KnownConsumer>;
	consumerFor(key: string): Promise<KnownConsumer | null>;
	routeOf(req: GatewayRequest): GatewayRoute | undefined;
	takeRequest(ctx: GatewayContext, consumer: KnownConsumer): Promise<number>;
	checkRequest(ctx: GatewayContext, req: GatewayRequest, route: GatewayRoute): void;
}

/**
 * Who is calling, and may they: the gateway's API keys (cached, bounded), scopes from the route table,
 * the consumers' rate limit shared by every gateway, the per-address limit on failed keys, and the
 * request's shape checked only once the caller is known. moleculer-web calls `authenticate` and
 * `authorize`; `knownConsumer` and `clientAddress` also serve the route's first middleware, which runs
 * before any body is read.
 */
export const GatewayAuthMixin = {
	created() {
		this.consumerCache = new Map();
		// The consumers' limit when the shared one is out of reach; the addresses' limit always (docs/rate-limits.md).
		this.rateLimiter = new RateLimiter();
		this.tokenLeases = new TokenLeases();
		this.sharedLimitWarned = 0;
		this.addressLimiter = new RateLimiter();
		// Settings travel to other nodes as JSON: the list is kept there as text and parsed here.
		this.trustedProxies = parseAddressList(this.settings.trustedProxies);
	},

	events: {
		// A revoked key stops working at once on every gateway, not when the cache expires.
		"consumers.revoked"() {
			this.consumerCache.clear();
			this.tokenLeases.clear();
		},
		// Changed purposes too: the cached caller token carries the old ones.
		"consumers.changed"() {
			this.consumerCache.clear();
			this.tokenLeases.clear();
		}
	},

	methods: {
		async authenticate(ctx: GatewayContext, _route: unknown, req: GatewayRequest) {
			const consumer = await this.knownConsumer(req);
			// Only the signed token speaks for the consumer beyond the gateway.
			ctx.meta.callerToken = consumer.token;
			return consumer;
		},

		async authorize(ctx: GatewayContext, _route: unknown, req: GatewayRequest) {
			const route = this.routeOf(req);
			// moleculer-web hands authenticate's answer over as meta.user; past this point the caller has one
			// name, the signed ctx.meta.callerToken (ctx.locals.caller once verified), so it is not sent on.
			const consumer: KnownConsumer = ctx.meta.user;
			delete ctx.meta.user;
			// Fail closed: a route without a scope in the table is reachable by nobody.
			if (!route || !consumer.scopes.includes(route.scope)) {
				throw new ForbiddenError("ERR_MISSING_SCOPE", { required: route?.scope ?? null });
			}
			const wait = await this.takeRequest(ctx, consumer);
			if (wait > 0) throw new RateLimitExceeded(RATE_LIMIT_EXCEEDED, { retryAfter: wait });
			// Only now, so a caller without a key or scope learns nothing about the request's shape.
			this.checkRequest(ctx, req, route);
		},

		/**
		 * One request from the consumer's token bucket, shared by every gateway (consumers.take in Base A,
		 * a lease of a few tokens at a time: docs/rate-limits.md); 0, or the seconds to wait. Base A out of
		 * reach: this gateway's own bucket, so the API keeps serving the other bases with a limit per
		 * replica meanwhile.
		 */
		async takeRequest(ctx: GatewayContext, consumer: KnownConsumer): Promise<number> {
			try {
				return await this.tokenLeases.take(consumer.id, consumer.rateLimit, count =>
					this.broker.call<Grant, { count: number }>("consumers.take", { count }, { parentCtx: ctx, caller: this.fullName, timeout: SHARED_LIMIT_TIMEOUT_MS, retries: 0 }));
			} catch (err: any) {
				if (Date.now() > this.sharedLimitWarned + 60_000) {
					this.sharedLimitWarned = Date.now();
					this.logger.warn("Shared rate limit out of reach; this gateway's own applies meanwhile:", err?.type ?? err?.name);
				}
				return this.rateLimiter.take(consumer.id, consumer.rateLimit);
			}
		},

		checkRequest(ctx: GatewayContext, req: GatewayRequest, route: GatewayRoute) {
			checkBody(req.method, req.headers, route.accepts);
			checkPathParamsInBody(req.body, req.$alias?.keys ?? [], req.$params);
			// The stated purpose travels to the consulting node, which checks it against the caller token (ConsultationMiddleware).
			const finalidade = req.headers[PURPOSE_HEADER];
			if (typeof finalidade === "string") ctx.meta.finalidade = finalidade.trim();
			const key = req.headers["idempotency-key"];
			if (typeof key === "string" && route.idempotent) ctx.meta.idempotency = { key: checkIdempotencyKey(key), action: route.action };
		},

		routeOf(req: GatewayRequest): GatewayRoute | undefined {
			return routeByKey.get(`${req.$alias?.method} ${req.$alias?.action}`);
		},

		clientAddress(req: GatewayRequest): string {
			return clientAddress(req.socket.remoteAddress, req.headers["x-forwarded-for"], this.trustedProxies);
		},

		/** The consumer of the request's key (cached), or 401. */
		async knownConsumer(req: GatewayRequest): Promise<KnownConsumer> {
			const header = req.headers.authorization;
			if (!header) throw new UnAuthorizedError(ERR_NO_TOKEN, null);
			const match = BEARER.exec(header);
			if (!match) throw new UnAuthorizedError(ERR_INVALID_TOKEN, null);
			const consumer = await this.consumerFor(match[1]);
			if (!consumer) throw new UnAuthorizedError(ERR_INVALID_TOKEN, null);
			return consumer;
		},

		/** The consumer of the request's key when this gateway knows it already, else undefined. */
		cachedConsumer(req: GatewayRequest): KnownConsumer | undefined {
			const match = BEARER.exec(req.headers.authorization ?? "");
			const hit = match ? this.consumerCache.get(match[1]) : undefined;
			return hit && hit.until > Date.now() ? hit.consumer ?? undefined : undefined;
		},

		/** Consumers by key, cached briefly so a request does not cost a Base A round trip. */
		async consumerFor(key: string): Promise<KnownConsumer | null> {
			const now = Date.now();
			const hit = this.consumerCache.get(key);
			if (hit && hit.until > now) return hit.consumer;
			const consumer: KnownConsumer | null = await this.broker.call("consumers.authenticate", { key }, { caller: this.fullName });
			// Bounded, oldest out first: a flood of unknown keys never evicts all the good ones at once.
			while (this.consumerCache.size >= AUTH_CACHE_SIZE) this.consumerCache.delete(this.consumerCache.keys().next().value!);
			// Never past the caller token's own expiry (less a request's time to run); an unknown key only briefly.
			const ttl = consumer ? Math.min(config.authCacheSeconds * 1000, config.callerTokenSeconds * 1000 - config.requestTimeoutMs) : UNKNOWN_KEY_CACHE_MS;
			this.consumerCache.delete(key);
			this.consumerCache.set(key, { consumer, until: now + ttl });
			return consumer;
		}
	}
} satisfies MixinSchema<GatewayAuthThis> as unknown as Mixin;
