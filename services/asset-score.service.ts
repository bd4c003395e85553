import type { Context, ServiceSchema } from "moleculer";
import { BaseBMixin } from "../mixins/base-b.mixin";
import { PiiMixin } from "../mixins/pii.mixin";
import type { ProfileDoc } from "../lib/base-b/profile";
import { scoreProfile } from "../lib/base-b/score";
import { todayIso } from "../lib/dates";
import { NotFoundError } from "../lib/errors";
import * as f from "../lib/fields";

/** Base B: the explainable asset score of a profile (formula in docs/score.md). A consultation. */
const AssetScoreService: ServiceSchema = {
	name: "asset-score",
	mixins: [BaseBMixin(), PiiMixin],

	actions: {
		get: {
			callers: ["api", "report"], scopes: ["score:read"], audit: true, consultation: true,
			params: { $$strict: true, cpf: f.cpf },
			async handler(ctx: Context<{ cpf: string }, any>) {
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
		}
	}
};

export default AssetScoreService;
