import type { Context, Middleware } from "moleculer";
import { fingerprint } from "../services/idempotency.service";

export interface IdempotencyMeta {
	key: string;
	/** The action the key belongs to; meta travels into nested calls, which must not be caught too. */
	action: string;
}

/**
 * Honours the Idempotency-Key that the gateway puts in `ctx.meta.idempotency` for idempotent
 * routes: the first call runs and its answer is stored; a repeat gets the stored answer and
 * status without running the action again.
 */
export const IdempotencyMiddleware = {
	name: "Idempotency",
	localAction(handler: (ctx: Context<any, any>) => Promise<unknown>, action: { name: string }) {
		return async function idempotent(ctx: Context<any, any>) {
			const meta: IdempotencyMeta | undefined = ctx.meta.idempotency;
			if (!meta || meta.action !== action.name) return handler(ctx);
			const ref = { consumer: ctx.meta.consumer?.id ?? "anonymous", key: meta.key };
			const claim: any = await ctx.call("idempotency.begin", { ...ref, action: action.name, fingerprint: fingerprint(action.name, ctx.params) });
			if (claim.state === "replay") {
				ctx.meta.$statusCode = claim.status;
				if (claim.location) ctx.meta.$location = claim.location;
				return claim.response;
			}
			try {
				const response = await handler(ctx);
				await ctx.call("idempotency.complete", { ...ref, status: ctx.meta.$statusCode ?? 200, response, location: ctx.meta.$location });
				return response;
			} catch (err) {
				await ctx.call("idempotency.release", ref).catch(() => undefined);
				throw err;
			}
		};
	}
} as unknown as Middleware;
