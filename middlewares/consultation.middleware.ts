import type { Context, Middleware } from "moleculer";
import type { Caller, MeshLocals, MeshMeta } from "./zero-trust.middleware";
import { activityPseudonym } from "../lib/base-c/subject";
import { isPurpose, PurposeError, PurposeNotAllowedError, type Purpose } from "../lib/purposes";

/** What one consultation publishes on the `consultations` channel (Base C's activity service stores it). */
export interface ConsultationMessage {
	/** Base C's pseudonym of the CPF, never the CPF */
	subject: string;
	at: string;
	/** the consulting service */
	source: string;
	/** the consumer id of the API key (a UUID), or "operator" */
	consumer: string;
	/** the purpose stated for it (lib/purposes.ts) */
	purpose: Purpose;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Who consulted, as Base C keeps it: an API consumer's id (a UUID), or "operator" (whose id names a person). */
export const consultingConsumer = (caller: Caller | undefined): string => (caller && UUID.test(caller.id) ? caller.id.toLowerCase() : "operator");

/** The purpose a consulting call states, once checked against the documented list (else 400) and the caller token (else 403). */
function statedPurpose(ctx: Context<unknown, MeshMeta, MeshLocals>): Purpose {
	const purpose = ctx.meta?.finalidade;
	if (!isPurpose(purpose)) throw new PurposeError(!purpose);
	const allowed = ctx.locals?.caller?.purposes ?? [];
	if (!allowed.includes(purpose)) throw new PurposeNotAllowedError(allowed);
	return purpose;
}

/** What a batch publishes per chunk: one message for many consultations (Base C stores one document per subject). */
export interface ConsultationBatchMessage extends Omit<ConsultationMessage, "subject"> {
	subjects: string[];
}

/**
 * The consultations of a chunk of a batch (an action declared `consultation: "batch"`, whose purpose
 * the middleware checked): one message on the channel for the whole chunk, with Base C's pseudonyms.
 * Resolves once JetStream stored it.
 */
export function publishConsultations(ctx: Context<unknown, MeshMeta, MeshLocals>, cpfs: string[]): Promise<unknown> {
	if (cpfs.length === 0) return Promise.resolve();
	const subjectOf = batchPseudonym ??= activityPseudonym();
	const message: ConsultationBatchMessage = {
		subjects: cpfs.map(subjectOf), at: new Date().toISOString(), source: ctx.service?.name ?? "unknown",
		consumer: consultingConsumer(ctx.locals?.caller), purpose: statedPurpose(ctx)
	};
	return ctx.broker.channels.publish("consultations", message);
}
let batchPseudonym: ((cpf: string) => string) | undefined;

/**
 * An action declared `consultation: true` is a consultation of the CPF in its params (DESIGN.md:
 * lookup, profile, score, report): once it answered, the consultation is published on the durable
 * channel `events.cpf.consulted`, where Base C's activity service keeps it. The message carries Base C's
 * pseudonym of the CPF (never the CPF), the consumer who consulted and the purpose. Publishing does not
 * hold up the answer; a failure is logged (it means NATS itself is down). Inside a report the parts are
 * not consultations of their own: the report counts once, so a call made by the report group is not counted.
 *
 * Before anything is read, the purpose (`ctx.meta.finalidade`, from the `Finalidade` header) must be one
 * of the documented list (else 400) and one the caller token allows (its `fin` claim, signed by the
 * group that checks API keys from the key's `purposes`; else 403): a node that forwards the call can
 * choose among the purposes the key allows, never beyond (docs/consultation-purpose.md).
 */
export const ConsultationMiddleware: Middleware = {
	name: "Consultation",
	localAction(handler: (ctx: Context) => Promise<unknown>, action: { consultation?: boolean | "batch"; service?: { name: string } }) {
		if (!action.consultation) return handler;
		const subjectOf = activityPseudonym();
		const source = action.service?.name ?? "unknown";
		return async function consulted(ctx: Context<{ cpf: string }, MeshMeta, MeshLocals>) {
			const purpose = statedPurpose(ctx);
			// A batch checks the purpose here and publishes its consultations itself, per chunk (publishConsultations).
			if (action.consultation === "batch") return handler(ctx);
			const result = await handler(ctx);
			if (ctx.locals?.callerGroup !== "report") {
				const message: ConsultationMessage = {
					subject: subjectOf(ctx.params.cpf), at: new Date().toISOString(), source,
					consumer: consultingConsumer(ctx.locals?.caller), purpose
				};
				ctx.broker.channels.publish("consultations", message)
					.catch((err: Error) => ctx.broker.logger.warn("Consultation not recorded:", err.name));
			}
			return result;
		};
	}
};
