import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import type { Transaction } from "sequelize";
import { BaseAMixin, type BaseAThis } from "../mixins/base-a.mixin";
import { defineDebt } from "../lib/base-a/models";
import { debtView } from "../lib/base-a/debts";
import { todayIso } from "../lib/dates";
import { toCents } from "../lib/money";
import { ForbiddenError, InvalidFieldError, NotFoundError } from "../lib/errors";
import type { MeshLocals, MeshMeta } from "../middlewares/zero-trust.middleware";
import * as f from "../lib/fields";
import { OUTBOX_INSERT_SQL, outboxRow } from "../lib/webhooks/events";

interface DebtParams {
	cpf: string;
	id?: string;
	valor: number;
	empresa: string;
	dataVencimento: string;
	datePagamento?: string;
	dataPagamento?: string;
}

/** The seed spells it `datePagamento`; `dataPagamento` is accepted too, and both must agree. */
function paymentDate(params: DebtParams): string | undefined {
	const { datePagamento, dataPagamento } = params;
	if (datePagamento && dataPagamento && datePagamento !== dataPagamento) {
		throw new InvalidFieldError("datePagamento", "'datePagamento' and 'dataPagamento' disagree; send one of them.", "conflict");
	}
	const paid = datePagamento ?? dataPagamento;
	if (paid && paid > todayIso()) throw new InvalidFieldError("datePagamento", "A payment date cannot be in the future.", "dateMax");
	return paid;
}

interface DebtWriteMethods {
	/** The id of the person a CPF's blind index names, locked against erasure until the transaction ends; 404 if none. */
	personId(bidx: string, transaction: Transaction): Promise<string>;
}

/** Base A: records debts and their settlement. */
const DebtWriteService: ServiceSchema<ServiceSettingSchema, DebtWriteMethods, BaseAThis> = {
	name: "debt-write",
	mixins: [BaseAMixin(defineDebt)],

	actions: {
		create: {
			callers: ["api"], scopes: ["debts:write"], audit: true,
			params: {
				$$strict: true,
				cpf: f.cpf, valor: f.money, empresa: f.empresa, dataVencimento: f.date,
				datePagamento: f.optionalDate, dataPagamento: f.paymentDateAlias
			},
			async handler(ctx: Context<DebtParams, MeshMeta, MeshLocals>) {
				const paid = paymentDate(ctx.params);
				const bidx = this.blindIndex(ctx.params.cpf);
				return this.inTransaction(async transaction => {
					const personId = await this.personId(bidx, transaction);
					const row = await this.adapter.model.create({
						person_id: personId,
						valor_cents: toCents(ctx.params.valor),
						empresa: ctx.params.empresa,
						data_vencimento: ctx.params.dataVencimento,
						data_pagamento: paid ?? null,
						recorded_by: ctx.locals.caller!.id
					}, { transaction });
					// The event commits with the debt or not at all (the transactional outbox, docs/webhooks.md).
					await this.query(OUTBOX_INSERT_SQL, outboxRow("debt.created", bidx, { debtId: row.get("id") }, this.broker.namespace), transaction);
					return debtView(row.get());
				}, ctx);
			}
		},

		settle: {
			callers: ["api"], scopes: ["debts:write"], audit: true,
			params: { $$strict: true, cpf: f.cpf, id: f.uuid, datePagamento: f.optionalDate, dataPagamento: f.paymentDateAlias },
			async handler(ctx: Context<DebtParams, MeshMeta, MeshLocals>) {
				const paid = paymentDate(ctx.params);
				if (!paid) throw new InvalidFieldError("datePagamento", "The 'datePagamento' field is required.", "required");
				const bidx = this.blindIndex(ctx.params.cpf);
				return this.inTransaction(async transaction => {
					const personId = await this.personId(bidx, transaction);
					const row = await this.adapter.model.findOne({ where: { id: ctx.params.id, person_id: personId }, transaction, lock: true });
					if (!row) throw new NotFoundError("Debt");
					const caller = ctx.locals.caller!;
					if (row.get("recorded_by") !== caller.id && !caller.scopes.includes("debts:admin")) {
						throw new ForbiddenError("Only the consumer that recorded this debt (or a debts:admin key) may settle it", "NOT_OWNER");
					}
					await row.update({ data_pagamento: paid }, { transaction });
					await this.query(OUTBOX_INSERT_SQL, outboxRow("debt.settled", bidx, { debtId: row.get("id") }, this.broker.namespace), transaction);
					return debtView(row.get());
				}, ctx);
			}
		}
	},

	methods: {
		async personId(bidx: string, transaction: Transaction): Promise<string> {
			await this.refuseIfErased(bidx, transaction);
			const [person] = await this.query<{ id: string }>("SELECT id FROM persons WHERE cpf_bidx = $1 FOR SHARE", [bidx], transaction);
			if (!person) throw new NotFoundError("Person");
			return person.id;
		}
	}
};

// Checked above against its own `this`; handed over as Moleculer takes a schema, untyped (types/mixin.ts).
export default DebtWriteService as unknown as ServiceSchema;
