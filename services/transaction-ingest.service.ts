import type { Context, ServiceSchema } from "moleculer";
import { Errors } from "moleculer";
import { BaseCMixin, isEsUnavailable } from "../mixins/base-c.mixin";
import { JetStreamMixin, type Delivery } from "../mixins/jetstream.mixin";
import { config } from "../config";
import { index } from "../lib/base-c/indices";
import { type MovementRecord, splitBody, toRecords, validateMovements } from "../lib/base-c/movement";
import { activitySubject } from "../lib/base-c/subject";

/** Elasticsearch refusals that will never succeed however often they are retried: dead letters. */
const POISON = new Set(["mapper_parsing_exception", "document_parsing_exception", "illegal_argument_exception", "strict_dynamic_mapping_exception"]);
const RECORD_FIELDS = ["movement_id", "subject", "tipo", "valor_cents", "data"];

function isRecord(data: any): data is MovementRecord {
	return !!data && typeof data === "object" && RECORD_FIELDS.every(k => k in data) && Object.keys(data).length === RECORD_FIELDS.length;
}

/**
 * Base C: takes movements in (one, a JSON array or NDJSON), answers 202 once JetStream has stored
 * them, and writes them to Elasticsearch in bulk under idempotent ids, acknowledging each message
 * only after Elasticsearch confirmed it. Elasticsearch away means back-pressure and catch-up.
 */
const TransactionIngestService: ServiceSchema = {
	name: "transaction-ingest",
	mixins: [BaseCMixin, JetStreamMixin],

	actions: {
		ingest: {
			// The gateway passes the raw body (mergeParams off): an object, an array or NDJSON text.
			params: { body: { type: "any" } },
			async handler(ctx: Context<{ body: unknown }, any>) {
				const { items, errors: parseErrors } = splitBody(ctx.params.body);
				if (items.length > config.ingestMaxMovements) {
					throw new Errors.MoleculerClientError(`At most ${config.ingestMaxMovements} movements per request`, 413, "TOO_MANY_MOVEMENTS", { max: config.ingestMaxMovements });
				}
				const { movements, errors } = validateMovements(items);
				const all = [...parseErrors, ...errors].sort((a, b) => a.index - b.index);
				if (all.length > 0 || movements.length === 0) {
					// All or nothing: a batch with a bad line is refused whole, every bad line named by its index.
					throw new Errors.MoleculerClientError(
						movements.length === 0 && all.length === 0 ? "No movement in the body" : "Some movements are invalid; nothing was accepted",
						422, "VALIDATION_ERROR", all.slice(0, 100));
				}
				const records = toRecords(movements, activitySubject);
				// In chunks, so a big batch does not put thousands of publishes in flight at once.
				for (let i = 0; i < records.length; i += 1000) {
					await Promise.all(records.slice(i, i + 1000).map(r => this.publish("transactions", r, r.movement_id)));
				}
				ctx.meta.$statusCode = 202;
				return { accepted: records.length };
			}
		}
	},

	methods: {
		/** Writes one batch with the bulk API; acks what Elasticsearch has, dead-letters poison, retries the rest. */
		async writeBatch(batch: Delivery<MovementRecord>[]) {
			const good: Delivery<MovementRecord>[] = [];
			for (const d of batch) {
				if (isRecord(d.data)) good.push(d);
				else await this.deadLetter(d, "not a movement record");
			}
			if (good.length === 0) return;
			const receivedAt = new Date().toISOString();
			let items: any[];
			try {
				const res = await this.es.bulk({
					operations: good.flatMap(d => [{ create: { _index: index.movements(), _id: d.data.movement_id } }, { ...d.data, received_at: receivedAt }])
				});
				items = res.items;
			} catch (err: any) {
				this.retryLater(good, err);
				return;
			}
			for (let i = 0; i < good.length; i++) {
				const result = items[i].create;
				// 409: this id is already there (a redelivery or a resent batch): counted once, done.
				if (!result.error || result.status === 409) good[i].msg.ack();
				else if (POISON.has(result.error.type)) await this.deadLetter(good[i], `${result.error.type}: ${result.error.reason ?? ""}`.slice(0, 300));
				else this.retryLater([good[i]], result.error);
			}
		},

		retryLater(deliveries: Delivery<MovementRecord>[], err: any) {
			const attempts = deliveries[0]?.msg.info.redeliveryCount ?? 1;
			const delay = Math.min(30_000, 500 * 2 ** Math.min(attempts, 6));
			if (isEsUnavailable(err) || err?.type) this.logger.warn(`Elasticsearch not taking ${deliveries.length} movement(s); retry in ${delay} ms:`, err?.name ?? err?.type);
			else this.logger.error("Bulk write failed:", err?.name, err?.message);
			for (const d of deliveries) d.msg.nak(delay);
		},

		async deadLetter(d: Delivery<MovementRecord>, reason: string) {
			await this.publish("deadLetters", { reason, at: new Date().toISOString(), stream_seq: d.msg.seq, payload: d.msg.string().slice(0, 4096) });
			d.msg.term();
		}
	},

	started() {
		this.consumeBatches("transactions", "elasticsearch-writer", (batch: Delivery<MovementRecord>[]) => this.writeBatch(batch), 2000);
	}
};

export default TransactionIngestService;
