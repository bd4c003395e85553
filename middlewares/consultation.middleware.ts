import type { Context, Middleware } from "moleculer";
import type { MeshLocals, MeshMeta } from "./zero-trust.middleware";
import { activityPseudonym } from "../lib/base-c/subject";

/**
 * An action declared `consultation: true` is a consultation of the CPF in its params (DESIGN.md:
 * lookup, profile, score, report): once it answered, the consultation is published on the durable
 * channel `events.cpf.consulted`, where Base C's activity service keeps `ultimaConsulta`. The message
 * carries Base C's pseudonym of the CPF, never the CPF. Publishing does not hold up the answer; a
 * failure is logged (it means NATS itself is down). Inside a report the parts are not consultations
 * of their own: the report counts once, so a call made by the report group is not counted.
 */
export const ConsultationMiddleware: Middleware = {
	name: "Consultation",
	localAction(handler: (ctx: Context) => Promise<unknown>, action: { consultation?: boolean; service?: { name: string } }) {
		if (!action.consultation) return handler;
		const subjectOf = activityPseudonym();
		const source = action.service?.name;
		return async function consulted(ctx: Context<{ cpf: string }, MeshMeta, MeshLocals>) {
			const result = await handler(ctx);
			if (ctx.locals?.callerGroup !== "report") {
				ctx.broker.channels.publish("consultations", { subject: subjectOf(ctx.params.cpf), at: new Date().toISOString(), source })
					.catch((err: Error) => ctx.broker.logger.warn("Consultation not recorded:", err.name));
			}
			return result;
		};
	}
};
