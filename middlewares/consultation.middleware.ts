import type { Context, Middleware } from "moleculer";
import type { MeshLocals } from "./zero-trust.middleware";

/**
 * An action declared `consultation: true` is a consultation of the CPF in its params (DESIGN.md:
 * lookup, profile, score, report): once it answered, its service records it on the consultations
 * channel (ConsultationMixin). Inside a report the parts are not consultations of their own: the
 * report counts once, so a call made by the report group is not counted.
 */
export const ConsultationMiddleware = {
	name: "Consultation",
	serviceCreating(service: { name: string }, schema: { actions?: Record<string, any>; methods?: Record<string, unknown> }) {
		for (const [name, action] of Object.entries(schema.actions ?? {})) {
			if (action?.consultation && typeof schema.methods?.recordConsultation !== "function") {
				throw new Error(`${service.name}.${name} is a consultation but its service has no ConsultationMixin`);
			}
		}
	},
	localAction(handler: (ctx: Context) => Promise<unknown>, action: { consultation?: boolean }) {
		if (!action.consultation) return handler;
		return async function consulted(ctx: Context<{ cpf: string }, any, MeshLocals>) {
			const result = await handler(ctx);
			if (ctx.locals?.callerGroup !== "report") (ctx.service as any).recordConsultation(ctx.params.cpf);
			return result;
		};
	}
} as unknown as Middleware;
