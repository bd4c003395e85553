import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { BaseAMixin, type BaseAThis } from "../mixins/base-a.mixin";
import type { MeshLocals, MeshMeta } from "../middlewares/zero-trust.middleware";
import type { AuditedParams } from "../middlewares/audit.middleware";
import { definePerson } from "../lib/base-a/models";
import { ConflictError, InvalidFieldError, NotFoundError } from "../lib/errors";
import * as f from "../lib/fields";
import { REENCRYPT_BATCH } from "../lib/pii";
import { LOOKUP_SQL, payloadA } from "../lib/base-a/lookup";
import { ERASE_DELIVERIES_SQL, ERASE_EVENTS_SQL, OUTBOX_INSERT_SQL, outboxRow } from "../lib/webhooks/events";

interface PersonParams { cpf: string; nome?: string; endereco?: string }

const PERSON_FIELDS = ["cpf", "nome", "endereco"] as const;
type PersonRow = { id: string; cpf_bidx: string } & Record<`${(typeof PERSON_FIELDS)[number]}_enc`, string>;

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
					// Which fields changed, never their values (the transactional outbox, docs/webhooks.md).
					const fields = Object.entries({ nome, endereco }).filter(([, v]) => v !== undefined).map(([k]) => k);
					await this.query(OUTBOX_INSERT_SQL, outboxRow("person.changed", bidx, { fields }, this.broker.namespace), transaction);
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

		/**
		 * One batch of `keys:reencrypt` (broker/repl-commands.ts): the persons after `after` (by id), each
		 * field not under the current PII key sealed again under it, in one short transaction.
		 */
		reencrypt: {
			callers: ["operators"], scopes: [], audit: true,
			visibility: "public",
			params: { $$strict: true, after: { type: "uuid", optional: true }, limit: REENCRYPT_BATCH },
			async handler(ctx: Context<{ after?: string; limit: number }, MeshMeta, MeshLocals>) {
				const { after, limit } = ctx.params;
				return this.inTransaction(async transaction => {
					const rows = await this.query<PersonRow>(
						"SELECT id::text, cpf_bidx, cpf_enc, nome_enc, endereco_enc FROM persons WHERE $1::uuid IS NULL OR id > $1::uuid ORDER BY id LIMIT $2 FOR UPDATE",
						[after ?? null, limit], transaction);
					let changed = 0;
					let unreadable = 0;
					for (const row of rows) {
						if (!PERSON_FIELDS.some(field => this.pii.isStale(row[`${field}_enc`]))) continue;
						let sealed: Record<string, string>;
						try {
							sealed = this.sealFields("persons", row.cpf_bidx, this.openFields("persons", row.cpf_bidx, row, PERSON_FIELDS));
						} catch {
							unreadable++;
							continue;
						}
						await this.query("UPDATE persons SET cpf_enc = $2, nome_enc = $3, endereco_enc = $4 WHERE id = $1 RETURNING id",
							[row.id, sealed.cpf_enc, sealed.nome_enc, sealed.endereco_enc], transaction);
						changed++;
					}
					const total = after ? undefined : Number((await this.query<{ n: string }>("SELECT count(*) AS n FROM persons", [], transaction))[0].n);
					return { scanned: rows.length, changed, unreadable, next: rows.length === limit ? rows[rows.length - 1].id : null, total };
				}, ctx as Context<AuditedParams, MeshMeta, MeshLocals>);
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
					// Its events not yet relayed or delivered were accepted before the erasure: never sent (docs/webhooks.md).
					await this.query(ERASE_EVENTS_SQL, [bidx], transaction);
					await this.query(ERASE_DELIVERIES_SQL, [bidx], transaction);
					const erased = await this.adapter.model.destroy({ where: { cpf_bidx: bidx }, transaction });
					if (erased > 0) await this.query(OUTBOX_INSERT_SQL, outboxRow("erased", bidx, {}, this.broker.namespace), transaction);
					return { erased };
				}, ctx);
			}
		}
	}
};

// Checked above against its own `this`; handed over as Moleculer takes a schema, untyped (types/mixin.ts).
export default PersonsService as unknown as ServiceSchema;
