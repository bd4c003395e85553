import type { Context, ServiceSchema } from "moleculer";
import { BaseAMixin } from "../mixins/base-a.mixin";
import { PiiMixin } from "../mixins/pii.mixin";
import { AuditedMixin } from "../mixins/audited.mixin";
import { ConsultationMixin } from "../mixins/consultation.mixin";
import { definePerson } from "../lib/base-a/models";
import { LOOKUP_SQL, payloadA } from "../lib/base-a/lookup";
import { NotFoundError } from "../lib/errors";
import * as f from "../lib/fields";

const IDENTITY = ["cpf", "nome", "endereco"];

/** Base A: payload A of a CPF (identity and debts). Each lookup is a consultation. */
const CpfLookupService: ServiceSchema = {
	name: "cpf-lookup",
	mixins: [BaseAMixin(definePerson), PiiMixin, AuditedMixin, ConsultationMixin],

	actions: {
		get: {
			callers: ["api", "report"], scopes: ["persons:read"],
			params: { $$strict: true, cpf: f.cpf },
			async handler(ctx: Context<{ cpf: string }, any>) {
				const { cpf } = ctx.params;
				const bidx = this.blindIndex(cpf);
				const person = await this.audited(ctx, "persons.read", bidx, async () => {
					const person = payloadA(await this.query(LOOKUP_SQL, [bidx]), row => this.openFields("persons", bidx, row, IDENTITY));
					if (!person) throw new NotFoundError("Person");
					return person;
				});
				this.consulted(ctx, cpf);
				return person;
			}
		}
	}
};

export default CpfLookupService;
