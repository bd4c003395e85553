import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { BaseAMixin, type BaseAThis } from "../mixins/base-a.mixin";
import type { MeshLocals, MeshMeta } from "../middlewares/zero-trust.middleware";
import { definePerson } from "../lib/base-a/models";
import { ConflictError, InvalidFieldError, NotFoundError } from "../lib/errors";
import * as f from "../lib/fields";
import { LOOKUP_SQL, payloadA } from "../lib/base-a/lookup";

interface PersonParams { cpf: string; nome?: string; endereco?: string }

/** Base A: registers persons and updates their name and address. */
const PersonsService: ServiceSchema<ServiceSettingSchema, object, BaseAThis> = {
	name: "persons",
	mixins: [BaseAMixin(definePerson)],

	actions: {
		create: {
			callers: ["api"], scopes: ["persons:write"], audit: true,
			params: { $$strict: true, cpf: f.cpf, nome: f.nome, endereco: f.endereco },
			async handler(ctx: Context<Required<PersonParams>, MeshMeta, MeshLocals>) {
				const { cpf, nome, endereco } = ctx.params;
				const bidx = this.blindIndex(cpf);
				return this.inTransaction(async transaction => {
					await this.refuseIfErased(bidx, transaction);
					const exists = await this.adapter.model.findOne({ where: { cpf_bidx: bidx }, attributes: ["id"], transaction });
					if (exists) throw new ConflictError("A person with this CPF already exists", "PERSON_EXISTS");
					await this.adapter.model.create({ cpf_bidx: bidx, ...this.sealFields("persons", bidx, { cpf, nome, endereco }) }, { transaction });
					return { cpf, nome, endereco };
				}, ctx);
			}
		},

		update: {
			callers: ["api"], scopes: ["persons:write"], audit: true,
			params: { $$strict: true, cpf: f.cpf, nome: { ...f.nome, optional: true }, endereco: { ...f.endereco, optional: true } },
			async handler(ctx: Context<PersonParams, MeshMeta, MeshLocals>) {
				const { cpf, nome, endereco } = ctx.params;
				if (nome === undefined && endereco === undefined) throw new InvalidFieldError("nome", "Send 'nome', 'endereco' or both.", "required");
				const bidx = this.blindIndex(cpf);
				return this.inTransaction(async transaction => {
					await this.refuseIfErased(bidx, transaction);
					const row = await this.adapter.model.findOne({ where: { cpf_bidx: bidx }, transaction, lock: true });
					if (!row) throw new NotFoundError("Person");
					await row.update(this.sealFields("persons", bidx, { nome, endereco }), { transaction });
					return this.openFields("persons", bidx, row.get(), ["cpf", "nome", "endereco"]);
				}, ctx);
			}
		},

		/** LGPD access: everything Base A holds on a person (by blind index), or null. */
		export: {
			callers: ["privacy"], scopes: ["privacy:admin"], audit: true,
			visibility: "public",
			params: { cpfBidx: { type: "string", length: 64 } },
			async handler(ctx: Context<{ cpfBidx: string }, MeshMeta, MeshLocals>) {
				const bidx = ctx.params.cpfBidx;
				return payloadA(await this.query(LOOKUP_SQL, [bidx]), row => this.openFields("persons", bidx, row, ["cpf", "nome", "endereco"]));
			}
		},

		/** LGPD erasure: the person and (by cascade) their debts, and a tombstone (docs/erasure.md). Idempotent. */
		erase: {
			callers: ["privacy"], audit: true,
			visibility: "public",
			params: { cpfBidx: { type: "string", length: 64 } },
			async handler(ctx: Context<{ cpfBidx: string }, MeshMeta, MeshLocals>) {
				const bidx = ctx.params.cpfBidx;
				return this.inTransaction(async transaction => {
					// The tombstone first: writes of this CPF begun before now are refused from here on.
					await this.recordErasure(bidx, transaction);
					// Stored Idempotency answers of the person's writes (in any base) hold their data too.
					await this.query("DELETE FROM idempotency_keys WHERE cpf_bidx = $1 RETURNING key", [bidx], transaction);
					return { erased: await this.adapter.model.destroy({ where: { cpf_bidx: bidx }, transaction }) };
				}, ctx);
			}
		}
	}
};

// Checked above against its own `this`; handed over as Moleculer takes a schema, untyped (types/mixin.ts).
export default PersonsService as unknown as ServiceSchema;
