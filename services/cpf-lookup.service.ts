import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { BaseAMixin, type BaseAThis } from "../mixins/base-a.mixin";
import type { MeshLocals, MeshMeta } from "../middlewares/zero-trust.middleware";
import { definePerson } from "../lib/base-a/models";
import { LOOKUP_MANY_SQL, LOOKUP_SQL, payloadA, rowsByBidx } from "../lib/base-a/lookup";
import { DEBT_SUMMARY_SQL, type DebtSummaryRow, debtSummaryOf } from "../lib/base-a/debt-summary";
import { todayIso } from "../lib/dates";
import { NotFoundError } from "../lib/errors";
import * as f from "../lib/fields";
import { BATCH_CHUNK } from "../lib/batch";

const IDENTITY = ["cpf", "nome", "endereco"];

/** Base A: payload A of a CPF (identity and debts), and the debt summary the credit score reads. Each lookup is a consultation. */
const CpfLookupService: ServiceSchema<ServiceSettingSchema, object, BaseAThis> = {
	name: "cpf-lookup",
	mixins: [BaseAMixin(definePerson)],

	actions: {
		get: {
			callers: ["api", "report"], scopes: ["persons:read"], audit: true, consultation: true,
			params: { $$strict: true, cpf: f.cpf },
			async handler(ctx: Context<{ cpf: string }, MeshMeta, MeshLocals>) {
				const bidx = this.blindIndex(ctx.params.cpf);
				const person = payloadA(await this.query(LOOKUP_SQL, [bidx]), row => this.openFields("persons", bidx, row, IDENTITY));
				if (!person) throw new NotFoundError("Person");
				return person;
			}
		},

		/**
		 * Payload A of a chunk of a batch (POST /reports/batch): the lookup's query with the whole set
		 * (`= ANY`), one round trip; null where Base A does not know the person. One audit row for the
		 * read; the batch files one per CPF under its own name.
		 */
		getMany: {
			callers: ["report"], scopes: ["persons:read"], audit: true,
			params: { $$strict: true, cpfs: { type: "array", items: f.cpf, min: 1, max: BATCH_CHUNK } },
			async handler(ctx: Context<{ cpfs: string[] }, MeshMeta, MeshLocals>) {
				const bidxs = ctx.params.cpfs.map(cpf => this.blindIndex(cpf));
				const byBidx = rowsByBidx(await this.query(LOOKUP_MANY_SQL, [bidxs]));
				return bidxs.map(b => payloadA(byBidx.get(b) ?? [], row => this.openFields("persons", b, row, IDENTITY)));
			}
		},

		/** The credit score's Base A part (lib/credit-score/inputs.ts): counts and sums of the debts, no identity opened. */
		debtSummary: {
			callers: ["report"], scopes: ["score:read"], audit: true,
			params: { $$strict: true, cpf: f.cpf },
			async handler(ctx: Context<{ cpf: string }, MeshMeta, MeshLocals>) {
				const [row] = await this.query<DebtSummaryRow>(DEBT_SUMMARY_SQL, [[this.blindIndex(ctx.params.cpf)], todayIso()]);
				if (!row) throw new NotFoundError("Person");
				return debtSummaryOf(row);
			}
		},

		/**
		 * The debt summaries of a chunk of a batch (POST /scores/batch): the same query with the whole set
		 * (`= ANY`), one round trip; null where Base A does not know the person. One audit row for the read;
		 * the batch files one per CPF under its own name.
		 */
		debtSummaryMany: {
			callers: ["report"], scopes: ["score:read"], audit: true,
			params: { $$strict: true, cpfs: { type: "array", items: f.cpf, min: 1, max: BATCH_CHUNK } },
			async handler(ctx: Context<{ cpfs: string[] }, MeshMeta, MeshLocals>) {
				const bidxs = ctx.params.cpfs.map(cpf => this.blindIndex(cpf));
				const rows = await this.query<DebtSummaryRow>(DEBT_SUMMARY_SQL, [bidxs, todayIso()]);
				const byBidx = new Map(rows.map(r => [String(r.cpf_bidx), debtSummaryOf(r)]));
				return bidxs.map(b => byBidx.get(b) ?? null);
			}
		}
	}
};

// Checked above against its own `this`; handed over as Moleculer takes a schema, untyped (types/mixin.ts).
export default CpfLookupService as unknown as ServiceSchema;
