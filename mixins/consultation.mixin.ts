import type { ServiceSchema } from "moleculer";
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
		/** Called by ConsultationMiddleware after an action declared `consultation: true` answered. */
		recordConsultation(cpf: string): void {
			this.publish("consultations", { subject: activitySubject(cpf), at: new Date().toISOString(), source: this.name })
				.catch((err: Error) => this.logger.warn("Consultation not recorded:", err.name));
		}
	}
};
