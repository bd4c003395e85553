import type { KeyObject } from "node:crypto";
import type { Context, Middleware, ServiceBroker } from "moleculer";
import { config, need, type Config } from "../config";
import { CallerTokenError, ForbiddenError } from "../lib/errors";
import { groupOf, isGroup, TOKEN_ISSUER, type Group } from "../config/groups";
import { nowSeconds, signToken, TokenError, verifyToken, type CallerClaims, type MeshClaims } from "../lib/mesh/token";
import { SCOPES } from "../lib/scopes";
import { PURPOSE_CODES } from "../lib/purposes";
import type { IdempotencyMeta } from "../lib/base-a/idempotency-answer";

/** The call header that carries the calling group's token (never propagated to nested calls). */
export const GROUP_TOKEN_HEADER = "x-mesh-group";
/** A group token lives this long; a node signs a fresh one per target node when a minute is left. */
const GROUP_TOKEN_SECONDS = 300;
/** Tokens already verified, by their exact text: a hit costs a Map lookup instead of an Ed25519 check. */
const VERIFIED_CACHE_SIZE = 10_000;
/** Who may sign caller tokens: the group that checks API keys, and operators for themselves. */
const CALLER_ISSUERS: ReadonlySet<Group> = new Set([TOKEN_ISSUER, "operators"]);
/** Moleculer's own `$node` actions (they show the broker's options): operators only. */
const INTERNAL_CALLERS: readonly Group[] = ["operators"];

/** The caller an action runs for, once its token is verified: `ctx.locals.caller`. */
export interface Caller {
	id: string;
	name?: string;
	scopes: string[];
	/** the purposes this caller may consult for (ConsultationMiddleware) */
	purposes: string[];
	rateLimit?: number;
	/** operator tokens come from `operators`, API consumers' from `base-a` */
	issuer: Group;
}

/** What a handler may read from ctx.locals after the middleware ran, and what handlers and middlewares leave there for each other. */
export interface MeshLocals {
	caller?: Caller;
	/** The group that made this call (this node's own for an in-process call). */
	callerGroup?: Group;
	/** Set by a handler whose route answers 201 or 200: the call created its record (middlewares/http-status.middleware.ts). */
	created?: boolean;
	/** The success row is written already, inside the write's transaction (BaseAMixin.inTransaction): AuditMiddleware adds none. */
	audited?: boolean;
}

/**
 * What travels in ctx.meta in this mesh: from the gateway into the action, on into its nested calls, and
 * (the `$` fields) back to the gateway with the answer.
 */
export interface MeshMeta {
	/** The caller token (consumers.authenticate's, or an operator's): checked by every action, never trusted unchecked. */
	callerToken?: string;
	/** The purpose (finalidade) the client stated for a consultation, checked against the caller token by ConsultationMiddleware. */
	finalidade?: string;
	/** The Idempotency-Key of a write, put by the gateway on idempotent routes (middlewares/idempotency.middleware.ts honours it). */
	idempotency?: IdempotencyMeta;
	/** moleculer-web: the answer's HTTP status, from the route table (middlewares/http-status.middleware.ts). */
	$statusCode?: number;
	/** moleculer-web: the `Location` of a 201. */
	$location?: string;
	/** moleculer-web: the answer's Content-Type (ml-export's NDJSON stream). */
	$responseType?: string;
	/** moleculer-web's answer of authenticate, inside the gateway only: dropped once authorised, so it never travels. */
	user?: unknown;
}

/** The settings the middleware reads: the keys this process holds and every group's public key. */
type MeshSettings = Pick<Config, "meshKeys" | "meshPublicKeys">;

interface MeshState {
	broker: ServiceBroker;
	settings: MeshSettings;
	verified: Map<string, MeshClaims>;
	signed: Map<string, { token: string; exp: number }>;
	/** The group a call made outside any of our services signs as (set on first use). */
	ownGroup?: Group | null;
}

const states = new WeakMap<ServiceBroker, MeshState>();

function stateOf(broker: ServiceBroker, settings: MeshSettings): MeshState {
	let state = states.get(broker);
	if (!state) states.set(broker, (state = { broker, settings, verified: new Map(), signed: new Map() }));
	return state;
}

/** Checks a token once per text; later uses only re-check its expiry. */
function verified(state: MeshState, token: unknown): MeshClaims {
	if (typeof token !== "string" || token.length > 4096) throw new TokenError("missing token");
	const hit = state.verified.get(token);
	if (hit) {
		if (hit.exp <= nowSeconds()) throw new TokenError("expired token");
		return hit;
	}
	const claims = verifyToken(token, need(state.settings as Config, "meshPublicKeys"));
	if (state.verified.size >= VERIFIED_CACHE_SIZE) state.verified.delete(state.verified.keys().next().value!);
	state.verified.set(token, claims);
	return claims;
}

/** The group this node acts as for a call made by `service` (or by no service: the node's own group). */
function signingGroup(state: MeshState, service: string | undefined): Group {
	const keys = need(state.settings as Config, "meshKeys");
	const ofService = groupOf(service);
	if (ofService && keys.has(ofService)) return ofService;
	if (state.ownGroup === undefined) {
		const chosen = state.broker.metadata?.meshGroup;
		const local = new Set(state.broker.services.map(s => groupOf(s.name)).filter((g): g is Group => !!g && keys.has(g)));
		state.ownGroup = isGroup(chosen) && keys.has(chosen) ? chosen : local.size === 1 ? [...local][0] : keys.size === 1 ? [...keys.keys()][0] : null;
	}
	if (!state.ownGroup) throw new CallerTokenError("this node cannot tell which group it calls as");
	return state.ownGroup;
}

function groupToken(state: MeshState, iss: Group, aud: string): string {
	const cacheKey = `${iss}>${aud}`;
	const now = nowSeconds();
	const cached = state.signed.get(cacheKey);
	if (cached && cached.exp - now > 60) return cached.token;
	const exp = now + GROUP_TOKEN_SECONDS;
	const token = signToken({ typ: "group", iss, aud, node: state.broker.nodeID, exp }, need(state.settings as Config, "meshKeys").get(iss) as KeyObject);
	state.signed.set(cacheKey, { token, exp });
	return token;
}

/**
 * A group token is for one node: a node that received it (even one announcing a service it does not
 * really run) cannot replay it to any other.
 */
const audienceOf = (nodeID: string) => `node:${nodeID}`;

/** A caller token signed by `issuer` with this process's key of it, valid CALLER_TOKEN_SECONDS. */
function callerToken(issuer: Group, claims: Omit<CallerClaims, "typ" | "iss" | "exp">): string {
	const key = need(config, "meshKeys").get(issuer);
	if (!key) throw new CallerTokenError(`this process holds no ${issuer} key`);
	return signToken({ typ: "caller", ...claims, iss: issuer, exp: nowSeconds() + config.callerTokenSeconds }, key);
}

/** A caller token for an operator at the REPL, signed with the operators' key. */
export function operatorToken(id: string): string {
	return callerToken("operators", { sub: id, name: "repl", scopes: [...SCOPES], fin: [...PURPOSE_CODES] });
}

/** A caller token for an API consumer, signed by the key-checking group (consumers.authenticate). */
export function consumerToken(consumer: { id: string; name: string; scopes: string[]; purposes?: string[]; rateLimit: number }, requestId: string | null): string {
	return callerToken(TOKEN_ISSUER, { sub: consumer.id, name: consumer.name, scopes: consumer.scopes, fin: consumer.purposes, rl: consumer.rateLimit, rid: requestId ?? undefined });
}

interface ActionDef { name: string; callers?: readonly Group[]; scopes?: readonly string[]; visibility?: string }

/** An action as its schema declares it, before any check: what it says is not trusted yet. */
interface DeclaredAction { visibility?: string; callers?: unknown; scopes?: unknown }

/**
 * Zero trust between nodes (docs/security.md). Every call that leaves a node carries a token of the
 * calling group signed for the target node; every action checks, on its own node:
 * - `callers`: a call from another node must come from one of these groups;
 * - `scopes`: the call must carry a valid caller token (`ctx.meta.callerToken`) holding one of these
 *   scopes (`[]`: any valid caller).
 * A service whose non-private action declares no `callers` fails to start.
 */
export function createZeroTrustMiddleware(settings: MeshSettings = config): Middleware {
	return {
		name: "ZeroTrust",

		serviceCreating(_service: unknown, schema: { name: string; actions?: Record<string, DeclaredAction | false> }) {
			if (schema.name.startsWith("$")) return;
			for (const [name, action] of Object.entries(schema.actions ?? {})) {
				if (action === false || action?.visibility === "private" || action?.visibility === "protected") continue;
				if (!Array.isArray(action?.callers) || !action.callers.every(isGroup)) {
					throw new Error(`${schema.name}.${name} declares no 'callers' (the groups that may call it): refusing to start`);
				}
				if (action.scopes !== undefined && !(Array.isArray(action.scopes) && action.scopes.every((s: string) => (SCOPES as readonly string[]).includes(s)))) {
					throw new Error(`${schema.name}.${name} declares unknown scopes`);
				}
			}
		},

		remoteAction(this: ServiceBroker, handler: (ctx: Context) => Promise<unknown>) {
			const state = stateOf(this, settings);
			return function signedCall(ctx: Context) {
				const iss = signingGroup(state, ctx.caller ?? undefined);
				ctx.headers = { ...ctx.headers, [GROUP_TOKEN_HEADER]: groupToken(state, iss, audienceOf(ctx.nodeID ?? "")) };
				return handler(ctx);
			};
		},

		localAction(this: ServiceBroker, handler: (ctx: Context) => Promise<unknown>, action: ActionDef) {
			const state = stateOf(this, settings);
			const internal = action.name.startsWith("$");
			const callers = new Set(internal ? INTERNAL_CALLERS : (action.callers ?? []));
			const scopes = action.scopes;
			return function checkedCall(ctx: Context<unknown, MeshMeta, MeshLocals>) {
				ctx.locals ??= {};
				const remote = !!ctx.nodeID && ctx.nodeID !== state.broker.nodeID;
				if (remote) {
					let claims: MeshClaims;
					try {
						claims = verified(state, ctx.headers?.[GROUP_TOKEN_HEADER]);
					} catch (err) {
						throw new CallerTokenError(`group token: ${(err as Error).message}`);
					}
					if (claims.typ !== "group" || claims.aud !== audienceOf(state.broker.nodeID)) throw new CallerTokenError("group token for another audience");
					if (!callers.has(claims.iss)) throw new ForbiddenError(`The ${claims.iss} group may not call ${action.name}`, "CALLER_NOT_ALLOWED", { group: claims.iss });
					ctx.locals.callerGroup = claims.iss;
				} else {
					ctx.locals.callerGroup = groupOf(ctx.caller) ?? state.ownGroup ?? undefined;
				}
				const token = ctx.meta?.callerToken;
				if (token !== undefined || scopes) {
					let claims: MeshClaims;
					try {
						claims = verified(state, token);
					} catch (err) {
						throw new CallerTokenError((err as Error).message);
					}
					if (claims.typ !== "caller" || !CALLER_ISSUERS.has(claims.iss)) throw new CallerTokenError("not a caller token");
					ctx.locals.caller = { id: claims.sub, name: claims.name, scopes: claims.scopes, purposes: claims.fin ?? [], rateLimit: claims.rl, issuer: claims.iss };
					if (scopes?.length && !scopes.some(s => claims.scopes.includes(s))) {
						throw new ForbiddenError("The caller lacks the scope this action requires", "ERR_MISSING_SCOPE", { required: scopes[0] });
					}
				}
				if (!remote || token === undefined) return handler(ctx);
				// The caller already has its token: no need to send it back with the response's meta.
				return handler(ctx).then(result => {
					delete ctx.meta.callerToken;
					return result;
				});
			};
		}
	} as unknown as Middleware;
}

/** The middleware of moleculer.config.ts, with this process's keys (config). */
export const ZeroTrustMiddleware = createZeroTrustMiddleware();
