import type { Context, Middleware } from "moleculer";
import { classify } from "../lib/errors";
import type { PiiCipher } from "../lib/pii";
import type { MeshLocals, MeshMeta } from "./zero-trust.middleware";

/**
 * An action's `audit` declaration, as the middleware reads it (types/moleculer.d.ts): `true`, or when
 * to write rows. The log names the act by the action's own name (`cpf-lookup.get`); rows written under
 * the older names are shown under these (migration 005).
 */
export interface AuditSpec {
	/** A row appended before the handler runs (a base without transactions: no write without its row). */
	before?: string;
	/** The row after a success, from the handler's answer; null for none (the outcome is recorded later, e.g. by a worker). Default "ok". */
	outcome?(result: unknown): string | null;
}

export type AuditDeclaration = true | AuditSpec;

/** The params an audit row reads: the CPF, or its blind index, when the action has one. */
export type AuditedParams = { cpf?: unknown; cpfBidx?: unknown } | null | undefined;

const specOf = (declared: AuditDeclaration | undefined): AuditSpec | undefined =>
	declared === true ? {} : declared || undefined;

/** The CPF's blind index the row is filed under: given as `cpfBidx`, or made from `cpf` by the service's cipher (PiiMixin). */
function cpfBidxOf(ctx: Context<AuditedParams, MeshMeta, MeshLocals>): string | null {
	const params = ctx.params;
	if (typeof params?.cpfBidx === "string") return params.cpfBidx;
	if (typeof params?.cpf !== "string") return null;
	const pii = (ctx.service as { pii?: Pick<PiiCipher, "blindIndex"> } | undefined)?.pii;
	if (!pii) throw new Error(`${ctx.action?.name} audits a CPF but its service has no PiiMixin`);
	return pii.blindIndex(params.cpf);
}

/**
 * Appends the audit row of a declared action: who (proven by the caller token it carries), what, whose
 * CPF, which request, how it ended. Also called by BaseAMixin.inTransaction, to append the success row
 * inside the write's transaction; then `ctx.locals.audited` says it is done.
 */
export function appendAudit(ctx: Context<AuditedParams, MeshMeta, MeshLocals>, outcome: string): Promise<unknown> {
	const action = ctx.action as { name: string; audit?: AuditDeclaration; consultation?: boolean | "batch" } | undefined;
	if (!action || !specOf(action.audit)) return Promise.resolve();
	if (outcome === "ok") ctx.locals.audited = true;
	// A consultation answered: its row also announces it (the `consulted` event, docs/webhooks.md).
	const consulted = action.consultation === true && outcome === "ok" ? { consulted: true } : {};
	return ctx.call("audit.append", { action: action.name, cpfBidx: cpfBidxOf(ctx), requestId: ctx.requestID ?? undefined, outcome, ...consulted });
}

/**
 * The per-CPF audit rows of a batch (an action over many CPFs, e.g. credit-score.batch): one row per
 * CPF, by blind index, under the action's name, appended in one call and one INSERT (audit.appendMany).
 * The answer for those CPFs leaves only once this resolved.
 */
export function appendAuditMany(ctx: Context<unknown, MeshMeta, MeshLocals>, rows: { cpfBidx: string; outcome: string }[], meta?: Partial<MeshMeta>): Promise<unknown> {
	if (rows.length === 0) return Promise.resolve();
	const consulted = (ctx.action as { consultation?: boolean | "batch" } | undefined)?.consultation === "batch" ? { consulted: true } : {};
	return ctx.call("audit.appendMany", { action: ctx.action?.name ?? "unknown", requestId: ctx.requestID ?? undefined, rows, ...consulted }, meta && { meta });
}

/**
 * Every read and write of personal data leaves an audit row (`audit` on the action): the answer
 * leaves only once its row exists, and a call that failed is recorded with its outcome (never its
 * message). When the row cannot be written, the call fails too.
 */
export const AuditMiddleware: Middleware = {
	name: "Audit",
	localAction(handler: (ctx: Context) => Promise<unknown>, action: { audit?: AuditDeclaration }) {
		const spec = specOf(action.audit);
		if (!spec) return handler;
		return async function audited(ctx: Context<AuditedParams, MeshMeta, MeshLocals>) {
			ctx.locals ??= {};
			if (spec.before) await appendAudit(ctx, spec.before);
			let result: unknown;
			try {
				result = await handler(ctx);
			} catch (err) {
				await appendAudit(ctx, classify(err).outcome).catch((e: Error) => ctx.broker.logger.warn("Audit of a failed call failed:", e.name));
				throw err;
			}
			const outcome = spec.outcome ? spec.outcome(result) : "ok";
			if (outcome && !ctx.locals.audited) await appendAudit(ctx, outcome);
			return result;
		};
	}
};
