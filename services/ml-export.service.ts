import { Readable } from "node:stream";
import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { BaseBMixin, type BaseBThis } from "../mixins/base-b.mixin";
import { PiiMixin, type PiiThis } from "../mixins/pii.mixin";
import type { MeshLocals, MeshMeta } from "../middlewares/zero-trust.middleware";
import { config, need } from "../config";
import { pseudonymizer } from "../lib/pii";
import type { ProfileDoc } from "../lib/base-b/profile";
import { featureRow } from "../lib/base-b/features";
import { SCORE_LATEST, type ScoreDoc, creditScoreColumns } from "../lib/base-b/score-history";
import { todayIso } from "../lib/dates";

/** Profiles read per round of the export: their latest credit scores come in one query. */
const CHUNK = 500;

/**
 * Base B: streams one NDJSON feature row per profile for model training, keyed by the ML
 * pseudonym, with the person's latest credit score and its components. A cursor feeds a stream with
 * back-pressure, so memory stays flat whatever the size.
 */
interface MlExportVars extends BaseBThis, PiiThis {
	/** The ML pseudonym of a profile, from its blind index. */
	subjectOf: (cpfBidx: string) => string;
}

const MlExportService: ServiceSchema<ServiceSettingSchema, object, MlExportVars> = {
	name: "ml-export",
	mixins: [BaseBMixin(), PiiMixin],

	created() {
		// Keyed on the blind index, with its own key: unlinkable to it or to Base C's pseudonym.
		this.subjectOf = pseudonymizer(need(config, "pseudonymKey"), "ml");
	},

	actions: {
		features: {
			// One audit row for the act of exporting: it reads every profile, never one person's data.
			callers: ["api"], scopes: ["ml:export"], audit: { before: "started", outcome: () => null },
			params: { $$strict: true },
			async handler(ctx: Context<Record<string, never>, MeshMeta, MeshLocals>) {
				const cursor = this.adapter.collection.find({}, { projection: { dataNascimento_enc: 1, fonteDeRenda: 1, bens: 1 }, batchSize: CHUNK });
				const latest = this.adapter.db.collection<ScoreDoc & { _id: string }>(SCORE_LATEST);
				const today = todayIso();
				const lines = async function (this: MlExportVars, chunk: ProfileDoc[]) {
					const scores = new Map((await latest.find({ _id: { $in: chunk.map(d => d._id) } }).toArray()).map(d => [d._id, d]));
					return chunk.map(doc => {
						const { dataNascimento } = this.openFields("profiles", doc._id, doc, ["dataNascimento"]);
						const row = { ...featureRow(this.subjectOf(doc._id), dataNascimento, doc.fonteDeRenda, doc.bens, today), ...creditScoreColumns(scores.get(doc._id)) };
						return `${JSON.stringify(row)}\n`;
					}).join("");
				};
				const rows = async function* (this: MlExportVars) {
					try {
						let chunk: ProfileDoc[] = [];
						for await (const doc of cursor as AsyncIterable<ProfileDoc>) {
							chunk.push(doc);
							if (chunk.length === CHUNK) {
								yield await lines.call(this, chunk);
								chunk = [];
							}
						}
						if (chunk.length > 0) yield await lines.call(this, chunk);
					} finally {
						// A client that hangs up ends the stream early; the driver's iterator would leave the cursor open.
						await cursor.close();
					}
				};
				ctx.meta.$responseType = "application/x-ndjson";
				return Readable.from(rows.call(this), { objectMode: false, highWaterMark: 64 * 1024 });
			}
		}
	}
};

// Checked above against its own `this`; handed over as Moleculer takes a schema, untyped (types/mixin.ts).
export default MlExportService as unknown as ServiceSchema;
