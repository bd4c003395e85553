import type { Context, ServiceSchema } from "moleculer";
import { BaseAMixin } from "../mixins/base-a.mixin";
import { PiiMixin } from "../mixins/pii.mixin";
import { AuditedMixin } from "../mixins/audited.mixin";
import { ConsultationMixin } from "../mixins/consultation.mixin";
import { definePerson } from "../lib/base-a/models";
import { debtView } from "../lib/base-a/debts";
import { NotFoundError } from "../lib/errors";
import * as f from "../lib/fields";

// One round trip: the person and its debts, oldest due date first.
const LOOKUP_SQL = `
	SELECT p.cpf_enc, p.nome_enc, p.endereco_enc,
	       d.id, d.valor_cents, d.empresa, d.data_vencimento, d.data_pagamento
	  FROM persons p LEFT JOIN debts d ON d.person_id = p.id
	 WHERE p.cpf_bidx = $1
	 ORDER BY d.data_vencimento, d.created_at`;

/** Base A: payload A of a CPF (identity and debts). Each lookup is a consultation. */
const CpfLookupService: ServiceSchema = {
	name: "cpf-lookup",
	mixins: [BaseAMixin(definePerson), PiiMixin, AuditedMixin, ConsultationMixin],

	actions: {
		get: {
			params: { $$strict: true, cpf: f.cpf },
			async handler(ctx: Context<{ cpf: string }, any>) {
				const { cpf } = ctx.params;
				const bidx = this.blindIndex(cpf);
				const person = await this.audited(ctx, "persons.read", bidx, async () => {
					const rows = await this.query(LOOKUP_SQL, [bidx]);
					if (rows.length === 0) throw new NotFoundError("Person");
					const identity = this.openFields("persons", bidx, rows[0], ["cpf", "nome", "endereco"]);
					return { ...identity, dividas: rows.filter((r: { id: string | null }) => r.id).map(debtView) };
				});
				this.consulted(ctx, cpf);
				return person;
			}
		}
	}
};

export default CpfLookupService;
