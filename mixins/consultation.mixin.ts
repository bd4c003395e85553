import type { Context, ServiceSchema } from "moleculer";
import { JetStreamMixin } from "./jetstream.mixin";
import { activitySubject } from "../lib/base-c/subject";

/**
 * A consultation of a CPF (lookup, profile, score, report) is published on the durable channel
 * `events.cpf.consulted`, where Base C's activity service keeps `ultimaConsulta`. The message carries
 * Base C's pseudonym of the CPF, never the CPF itself. Publishing does not hold up the answer; a
 * failure is logged (it means NATS itself is down).
 */
export const ConsultationMixin: Partial<ServiceSchema> = {
	mixins: [JetStreamMixin],
	methods: {
		consulted(ctx: Context<any, any>, cpf: string): void {
			// Inside a report the parts are not separate consultations: the report counts once.
			if (!ctx.meta?.inReport) this.recordConsultation(cpf);
		},
		recordConsultation(cpf: string): void {
			this.publish("consultations", { subject: activitySubject(cpf), at: new Date().toISOString(), source: this.name })
				.catch((err: Error) => this.logger.warn("Consultation not recorded:", err.name));
		}
	}
};
