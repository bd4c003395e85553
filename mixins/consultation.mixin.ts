import type { Context, ServiceSchema } from "moleculer";
import { config, need } from "../config";
import { pseudonymizer } from "../lib/pii";

let activityPseudonym: ((cpf: string) => string) | undefined;

/**
 * A consultation of a CPF (lookup, profile, score, report) is announced as `cpf.consulted`.
 * The event carries Base C's pseudonym of the CPF, never the CPF itself.
 */
export const ConsultationMixin: Partial<ServiceSchema> = {
	created() {
		activityPseudonym ??= pseudonymizer(need(config, "pseudonymKey"), "activity");
	},
	methods: {
		consulted(ctx: Context<any, any>, cpf: string): void {
			ctx.emit("cpf.consulted", { subject: activityPseudonym!(cpf), at: new Date().toISOString(), source: this.name });
		}
	}
};
