import { randomUUID } from "node:crypto";
import type { Context, Middleware } from "moleculer";
import { type Claim, fingerprint } from "../lib/base-a/idempotency-answer";
import { classify, type Thrown } from "../lib/errors";
import { ROUTES } from "../lib/gateway/routes";
import type { MeshLocals, MeshMeta } from "./zero-trust.middleware";

/** A write's params, as far as this middleware reads them: the CPF, when it has one. */
type WriteParams = { cpf?: unknown } | null | undefined;

const shownOnce = new Map(ROUTES.filter(r => r.shownOnce).map(r => [r.action, r.shownOnce!]));

/** The answer as it may be kept: without what is shown only once (a replay of POST /consumers has no key). */
function storable(action: string, response: unknown): unknown {
	const fields = shownOnce.get(action);
	if (!fields || !response || typeof response !== "object") return response;
	return Object.fromEntries(Object.entries(response).filter(([name]) => !fields.includes(name)));
}

/** Pauses between the attempts to store a write's answer (or free its key) while the request waits: about 6 s in all. */
const SETTLE_DELAYS_MS = [250, 500, 1000, 2000, 2000];
/**
 * Then, after the request was answered, this node keeps trying every 3 s for about 5 minutes: a claim is taken
 * over only when its node is known gone, so while this node lives, settling its claims is its own job, and
 * the client's retries get 409 IDEMPOTENCY_IN_PROGRESS until it is done. Sparse backoff (5 s, 10 s, 15 s, 30 s…)
 * left keys claimed for a minute after Base A or NATS was back (test/faults.test.ts, test/postgres-failover.test.ts);
 * one small call every 3 s per stuck claim costs nothing next to that.
 */
const LATER_DELAYS_MS = Array.from({ length: 100 }, () => 3000);
/**
 * A begin that failed (its reply lost with NATS, or timed out) may still be running on Base A: waiting up to
 * 4 s for a connection, then up to 10 s per statement (mixins/base-a.mixin.ts). Its claim is freed once more
 * after that, so an insert landing after the first release does not hold the key for 24 hours.
 */
const LATE_BEGIN_MS = 30_000;

/**
 * Stores the outcome of a claimed key, retrying through a short outage of Base A or the transporter.
 * It is called outside the request's own deadline (the gateway may have given up already): the write
 * happened, and the next retry of the client must find its answer. False when every attempt failed.
 */
async function settle(ctx: Context<unknown, MeshMeta, MeshLocals>, action: "idempotency.complete" | "idempotency.release", params: object, delays = SETTLE_DELAYS_MS): Promise<boolean> {
	for (let attempt = 0; ; attempt++) {
		try {
			await ctx.broker.call(action, params, { timeout: 3000, retries: 0, requestID: ctx.requestID ?? undefined, meta: { callerToken: ctx.meta.callerToken }, caller: ctx.service?.fullName });
			return true;
		} catch (err) {
			if (attempt >= delays.length) {
				if (delays === SETTLE_DELAYS_MS) {
					ctx.broker.logger.warn(`${action} failed after ${attempt + 1} attempts; retried in the background:`, (err as Thrown)?.name);
					void settle(ctx, action, params, LATER_DELAYS_MS);
				} else {
					ctx.broker.logger.error(`${action} still failing; the key stays claimed until this node leaves the mesh or the key expires:`, (err as Thrown)?.name);
				}
				return false;
			}
			await new Promise(r => setTimeout(r, delays[attempt]).unref());
		}
	}
}

/**
 * Honours the Idempotency-Key that the gateway puts in `ctx.meta.idempotency` for idempotent
 * routes: the first call runs and its answer is stored; a repeat gets the stored answer and
 * status without running the action again.
 *
 * A write that succeeded is answered as a success even when its answer could not be stored (Base A
 * or NATS down at that moment): answering 503 would make the client retry a write that happened.
 * Storing the answer, or freeing the key after a failure, is retried for a few seconds, then in the
 * background for a few minutes; a claim is taken over by `idempotency.begin` only once its node is gone.
 */
export const IdempotencyMiddleware = {
	name: "Idempotency",
	localAction(handler: (ctx: Context<WriteParams, MeshMeta, MeshLocals>) => Promise<unknown>, action: { name: string }) {
		return async function idempotent(ctx: Context<WriteParams, MeshMeta, MeshLocals>) {
			const idempotency = ctx.meta.idempotency;
			if (!idempotency || idempotency.action !== action.name) return handler(ctx);
			// idempotency.* files the key under the caller its token proves.
			const ref = { key: idempotency.key };
			// The CPF (if the write has one) files the answer under its blind index, for erasure.
			const cpf = typeof ctx.params?.cpf === "string" ? ctx.params.cpf : undefined;
			// The claim's token is chosen here, so that a begin whose reply was lost can be retried as the same claim,
			// or freed: its key would otherwise stay "in progress", held by this live node, for 24 hours.
			const token = randomUUID();
			const held = { ...ref, claim: token };
			let claim: Claim;
			try {
				claim = await ctx.call("idempotency.begin", { ...held, action: action.name, fingerprint: fingerprint(action.name, ctx.params), cpf });
			} catch (err) {
				// A client's error (key reused, in progress, invalid) claimed nothing; anything else may have claimed it.
				if (classify(err).status >= 500) {
					await settle(ctx, "idempotency.release", held);
					setTimeout(() => void settle(ctx, "idempotency.release", held), LATE_BEGIN_MS).unref();
				}
				throw err;
			}
			if (claim.state === "replay") {
				ctx.meta.$statusCode = claim.status;
				if (claim.location) ctx.meta.$location = claim.location;
				return claim.response;
			}
			// A Base A write stores its answer in its own transaction, under this claim's token (BaseAMixin.inTransaction).
			ctx.locals ??= {};
			ctx.locals.idempotencyClaim = token;
			let response: unknown;
			try {
				response = await handler(ctx);
			} catch (err) {
				await settle(ctx, "idempotency.release", held);
				throw err;
			}
			await settle(ctx, "idempotency.complete", { ...held, status: ctx.meta.$statusCode ?? 200, response: storable(action.name, response), location: ctx.meta.$location });
			return response;
		};
	}
} as unknown as Middleware;
