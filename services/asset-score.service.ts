import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { BaseBMixin, type BaseBThis } from "../mixins/base-b.mixin";
import { PiiMixin, type PiiThis } from "../mixins/pii.mixin";
import type { MeshLocals, MeshMeta } from "../middlewares/zero-trust.middleware";
import type { ProfileDoc } from "../lib/base-b/profile";
import { scoreProfile } from "../lib/base-b/score";
import { todayIso } from "../lib/dates";
import { NotFoundError } from "../lib/errors";
import * as f from "../lib/fields";
import { BATCH_CHUNK } from "../lib/batch";

/** Base B: the explainable asset score of a profile (formula in docs/score.md). A consultation. */
const AssetScoreService: ServiceSchema<ServiceSettingSchema, object, BaseBThis & PiiThis> = {
	name: "asset-score",
	mixins: [BaseBMixin(), PiiMixin],

	actions: {
		get: {
			callers: ["api", "report"], scopes: ["score:read"], audit: true, consultation: true,
			params: { $$strict: true, cpf: f.cpf },
			async handler(ctx: Context<{ cpf: string }, MeshMeta, MeshLocals>) {
				const { cpf } = ctx.params;
				const bidx = this.blindIndex(cpf);
				// Only what the score needs: the birth date is the one sealed field it opens.
				const doc: ProfileDoc | null = await this.adapter.collection.findOne(
					{ _id: bidx },
					{ projection: { dataNascimento_enc: 1, fonteDeRenda: 1, bens: 1 } }
				);
				if (!doc) throw new NotFoundError("Profile");
				const { dataNascimento } = this.openFields("profiles", bidx, doc, ["dataNascimento"]);
				return { cpf, ...scoreProfile({ dataNascimento, fonteDeRenda: doc.fonteDeRenda, bens: doc.bens }, todayIso()) };
			}
		},

		/**
		 * The asset scores of a chunk of a batch (POST /scores/batch), score and band only: one `$in`
		 * query; null where there is no profile. One audit row for the read (the batch files one per CPF).
		 */
		getMany: {
			callers: ["report"], scopes: ["score:read"], audit: true,
			params: { $$strict: true, cpfs: { type: "array", items: f.cpf, min: 1, max: BATCH_CHUNK } },
			async handler(ctx: Context<{ cpfs: string[] }, MeshMeta, MeshLocals>) {
				const bidxs = ctx.params.cpfs.map(cpf => this.blindIndex(cpf));
				const docs: ProfileDoc[] = await this.adapter.collection.find(
					{ _id: { $in: bidxs } },
					{ projection: { dataNascimento_enc: 1, fonteDeRenda: 1, bens: 1 } }
				).toArray();
				const today = todayIso();
				const byBidx = new Map(docs.map(doc => {
					const { dataNascimento } = this.openFields("profiles", doc._id, doc, ["dataNascimento"]);
					const { score, band } = scoreProfile({ dataNascimento, fonteDeRenda: doc.fonteDeRenda, bens: doc.bens }, today);
					return [doc._id, { score, band }];
				}));
				return bidxs.map(b => byBidx.get(b) ?? null);
			}
		}
	}
};

// Checked above against its own `this`; handed over as Moleculer takes a schema, untyped (types/mixin.ts).
export default AssetScoreService as unknown as ServiceSchema;
