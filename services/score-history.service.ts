import { randomUUID } from "node:crypto";
import type { Collection } from "mongodb";
import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { BaseBMixin, type BaseBThis } from "../mixins/base-b.mixin";
import { PiiMixin, type PiiThis } from "../mixins/pii.mixin";
import type { MeshLocals, MeshMeta } from "../middlewares/zero-trust.middleware";
import { HISTORY_MAX_PAGE, SCORE_HISTORY, SCORE_LATEST, type ScoreDoc, historyView, scoreDoc } from "../lib/base-b/score-history";
import type { CreditScore } from "../lib/credit-score/scorecard";
import * as f from "../lib/fields";
import { BATCH_CHUNK } from "../lib/batch";

interface HistoryThis extends BaseBThis, PiiThis {
	/** Kept scores; one that announced a score.changed has the event's id as its `_id` (what eventApplied reads). */
	history(): Collection<ScoreDoc & { _id?: unknown }>;
	latest(): Collection<ScoreDoc & { _id: string }>;
}

const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/;

/**
 * Base B: every computed credit score, pseudonymised by the CPF's blind index (docs/credit-score.md,
 * "History"). The credit-score service records; GET /scores/:cpf/history lists, newest first.
 */
const ScoreHistoryService: ServiceSchema<ServiceSettingSchema, object, HistoryThis> = {
	name: "score-history",
	mixins: [BaseBMixin(), PiiMixin],

	actions: {
		record: {
			// Written as part of credit-score.get, whose own audit row records the act.
			callers: ["report"], scopes: ["score:read"],
			params: { $$strict: true, cpf: f.cpf, score: { type: "object" } },
			async handler(ctx: Context<{ cpf: string; score: CreditScore }, MeshMeta, MeshLocals>) {
				const doc = scoreDoc(this.blindIndex(ctx.params.cpf), ctx.params.score);
				// A score computed before its person's erasure is not kept (docs/erasure.md): checked before the
				// writes and again after them, as profiles.put does (no transactions in Base B).
				const erasedSince = async () => ((await this.erasedAt(doc.bidx)) ?? new Date(0)) >= doc.at;
				if (await erasedSince()) return { recorded: false };
				// A band other than the newest kept one's is announced (score.changed) the way profiles.put announces
				// its write, Base B having no transactions: an intent in Base A's outbox first, the write naming it
				// (the history entry's _id is the event's), then the confirmation (docs/webhooks.md).
				const previous = await this.latest().findOne({ _id: doc.bidx }, { projection: { band: 1, at: 1 } });
				let eventId: string | undefined;
				if (previous && previous.band !== doc.band && previous.at < doc.at) {
					eventId = randomUUID();
					await ctx.call("events-relay.intend", { id: eventId, type: "score.changed", cpfBidx: doc.bidx, data: { from: previous.band, to: doc.band, model: doc.model }, acceptedAt: doc.at.toISOString() });
				}
				const { insertedId } = await this.history().insertOne({ ...doc, ...(eventId && { _id: eventId }) });
				// The newest per person, for the ML export; an older score arriving late does not replace a newer one.
				await this.latest().updateOne({ _id: doc.bidx, at: { $lte: doc.at } }, { $set: doc }, { upsert: true }).catch((err: { code?: number }) => {
					if (err?.code !== 11000) throw err; // a newer one is there: the filter missed it and the upsert hit its _id
				});
				if (await erasedSince()) {
					// The intent, never confirmed, is discarded by the relay's sweep: nothing names it any more.
					await this.history().deleteOne({ _id: insertedId });
					await this.latest().deleteOne({ _id: doc.bidx, at: doc.at });
					return { recorded: false };
				}
				if (eventId) await ctx.call("events-relay.confirm", { id: eventId }).catch((err: Error) => this.logger.warn("Score event left to the relay's sweep:", err?.name));
				return { recorded: true };
			}
		},

		/**
		 * The scores of a chunk of a batch (POST /scores/batch): one insert into the history. The newest per
		 * person (the ML export's) is left to single scores: FerretDB v1 runs a bulk of upserts one by one
		 * (500 took over 10 s), which would hold every chunk up (docs/credit-score.md, "Batch").
		 */
		recordMany: {
			callers: ["report"], scopes: ["score:read"],
			params: { $$strict: true, scores: { type: "array", min: 1, max: BATCH_CHUNK, items: { type: "object", strict: true, props: { cpf: f.cpf, score: { type: "object" } } } } },
			async handler(ctx: Context<{ scores: { cpf: string; score: CreditScore }[] }, MeshMeta, MeshLocals>) {
				const docs = ctx.params.scores.map(s => scoreDoc(this.blindIndex(s.cpf), s.score));
				await this.history().insertMany(docs, { ordered: false });
				return { recorded: docs.length };
			}
		},

		/** The relay, settling an intent its writer never confirmed: was the score it announced kept? (an `_id` read) */
		eventApplied: {
			callers: ["base-a"],
			visibility: "public",
			params: { cpfBidx: { type: "string", length: 64 }, id: "uuid" },
			async handler(ctx: Context<{ cpfBidx: string; id: string }>) {
				const doc = await this.history().findOne({ _id: ctx.params.id }, { projection: { bidx: 1 } });
				return doc?.bidx === ctx.params.cpfBidx;
			}
		},

		list: {
			callers: ["api"], scopes: ["score:read"], audit: true,
			params: {
				$$strict: true,
				cpf: f.cpf,
				size: { type: "number", integer: true, min: 1, max: HISTORY_MAX_PAGE, convert: true, default: 20 },
				before: { type: "string", pattern: ISO_INSTANT, optional: true, openapi: { description: "The `next` of the previous page: lists scores computed before it" } }
			},
			async handler(ctx: Context<{ cpf: string; size: number; before?: string }, MeshMeta, MeshLocals>) {
				const { cpf, size, before } = ctx.params;
				const filter = { bidx: this.blindIndex(cpf), ...(before && { at: { $lt: new Date(before) } }) };
				const docs = await this.history().find(filter, { sort: { at: -1 }, limit: size, projection: { _id: 0, bidx: 0 } }).toArray();
				return {
					cpf,
					entries: docs.map(historyView),
					next: docs.length === size ? docs[docs.length - 1].at.toISOString() : null
				};
			}
		}
	},

	methods: {
		history() {
			return this.adapter.db.collection<ScoreDoc & { _id?: unknown }>(SCORE_HISTORY);
		},
		latest() {
			return this.adapter.db.collection<ScoreDoc & { _id: string }>(SCORE_LATEST);
		}
	},

	async afterConnected() {
		await this.history().createIndex({ bidx: 1, at: -1 });
	}
};

// Checked above against its own `this`; handed over as Moleculer takes a schema, untyped (types/mixin.ts).
export default ScoreHistoryService as unknown as ServiceSchema;
