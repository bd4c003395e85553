import { Readable } from "node:stream";
import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { BaseBMixin, type BaseBThis } from "../mixins/base-b.mixin";
import { PiiMixin, type PiiThis } from "../mixins/pii.mixin";
import type { MeshLocals, MeshMeta } from "../middlewares/zero-trust.middleware";
import { config, need } from "../config";
import { pseudonymizer } from "../lib/pii";
import type { ProfileDoc } from "../lib/base-b/profile";
import { featureRow } from "../lib/base-b/features";
import { todayIso } from "../lib/dates";

/**
 * Base B: streams one NDJSON feature row per profile for model training, keyed by the ML
 * pseudonym. A cursor feeds a stream with back-pressure, so memory stays flat whatever the size.
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
				const cursor = this.adapter.collection.find({}, { projection: { dataNascimento_enc: 1, fonteDeRenda: 1, bens: 1 }, batchSize: 500 });
				const today = todayIso();
				const rows = async function* (this: MlExportVars) {
					try {
						for await (const doc of cursor as AsyncIterable<ProfileDoc>) {
							const { dataNascimento } = this.openFields("profiles", doc._id, doc, ["dataNascimento"]);
							yield `${JSON.stringify(featureRow(this.subjectOf(doc._id), dataNascimento, doc.fonteDeRenda, doc.bens, today))}\n`;
						}
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
