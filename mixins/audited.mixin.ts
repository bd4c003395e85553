import type { Context, ServiceSchema } from "moleculer";

/** The outcome recorded for an error: its type, never its message (which may hold data). */
export function outcomeOf(err: any): string {
	const code = Number(err?.code);
	if (code === 404) return "not_found";
	if (code === 409) return "conflict";
	if (code === 400 || code === 422) return "invalid";
	if (code === 503) return "unavailable";
	return "error";
}

/**
 * Every read and write of personal data appends an audit row through the audit service.
 * The call must succeed: when it fails, the caller fails too (and a write rolls back).
 */
export const AuditedMixin: Partial<ServiceSchema> = {
	methods: {
		audit(ctx: Context<any, any>, action: string, cpfBidx: string | null, outcome: string): Promise<unknown> {
			// audit.append names the caller itself, from the caller token this call carries.
			return ctx.call("audit.append", {
				action,
				cpfBidx,
				requestId: ctx.requestID,
				outcome
			});
		},
		/** Runs work, then records its outcome; the result leaves only once the audit row exists. */
		async audited<T>(ctx: Context<any, any>, action: string, cpfBidx: string | null, work: () => Promise<T>): Promise<T> {
			let result: T;
			try {
				result = await work();
			} catch (err) {
				await this.audit(ctx, action, cpfBidx, outcomeOf(err)).catch((e: Error) => this.logger.warn("Audit of a failed call failed:", e.name));
				throw err;
			}
			await this.audit(ctx, action, cpfBidx, "ok");
			return result;
		},
		/**
		 * For a base without transactions: a `started` row goes in before the write, so no write can
		 * exist without an audit row, then the outcome as for any call.
		 */
		async auditedWrite<T>(ctx: Context<any, any>, action: string, cpfBidx: string | null, work: () => Promise<T>): Promise<T> {
			await this.audit(ctx, action, cpfBidx, "started");
			return this.audited(ctx, action, cpfBidx, work);
		}
	}
};
