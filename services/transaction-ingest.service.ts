import { createHash } from "node:crypto";
import type { estypes } from "@elastic/elasticsearch";
import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { Errors } from "moleculer";
import { BaseCMixin, type BaseCThis, isEsUnavailable } from "../mixins/base-c.mixin";
import { acceptedAt, type Delivery } from "../middlewares/channels.middleware";
import { SUBJECT_TOKEN } from "../lib/mesh/streams";
import type { MeshLocals, MeshMeta } from "../middlewares/zero-trust.middleware";
import { config } from "../config";
import type { Thrown } from "../lib/errors";
import { index } from "../lib/base-c/indices";
import { type MovementRecord, MAX_REPORTED_ERRORS, splitBody, toRecords, validateMovements } from "../lib/base-c/movement";

/** Elasticsearch refusals that will never succeed however often they are retried: dead letters. */
const POISON = new Set(["mapper_parsing_exception", "document_parsing_exception", "illegal_argument_exception", "strict_dynamic_mapping_exception"]);
const RECORD_FIELDS = ["movement_id", "subject", "tipo", "valor_cents", "data"];
/** Movements per JetStream message: one message per slice of a request keeps the channel cheap. */
const RECORDS_PER_MESSAGE = 1000;

/** What travels on the channel: a slice of one request's movements. */
interface MovementBatch {
	records: MovementRecord[];
}

function isRecord(data: unknown): data is MovementRecord {
	return !!data && typeof data === "object" && RECORD_FIELDS.every(k => k in data) && Object.keys(data).length === RECORD_FIELDS.length;
}

interface TransactionIngestMethods {
	/** The consumer's side of the transactions channel: one bulk request for a batch of messages. */
	writeBatch(batch: Delivery<MovementBatch>[]): Promise<void>;
	/** Sends deliveries back for a later retry, backing off with their redeliveries. */
	retryLater(deliveries: Delivery<MovementBatch>[], err: unknown): void;
	deadLetter(d: Delivery<MovementBatch>, reason: string, payload: string, subject: string): Promise<void>;
	/** Checks the tombstones again once a batch is written, removes what an erasure overtook, and acks. */
	settleAfterErasures(done: Work[], deadSubjects: Set<string>): Promise<void>;
}

/** One message of a batch: the movements to write and those dropped by an erasure. */
interface Work {
	d: Delivery<MovementBatch>;
	records: MovementRecord[];
	drop: MovementRecord[];
}

/** Records kept, and records of a subject erased at or after `accepted` (ms). */
function splitErased(records: MovementRecord[], erased: Map<string, number>, accepted: number): [MovementRecord[], MovementRecord[]] {
	if (erased.size === 0) return [records, []];
	const keep: MovementRecord[] = [];
	const drop: MovementRecord[] = [];
	for (const r of records) ((erased.get(r.subject) ?? -Infinity) >= accepted ? drop : keep).push(r);
	return [keep, drop];
}

/**
 * Base C: takes movements in (one, a JSON array or NDJSON), answers 202 once JetStream has stored
 * them, and writes them to Elasticsearch in bulk under idempotent ids, acknowledging each message
 * only after Elasticsearch confirmed it. Elasticsearch away means back-pressure and catch-up.
 */
const TransactionIngestService: ServiceSchema<ServiceSettingSchema, TransactionIngestMethods, BaseCThis> = {
	name: "transaction-ingest",
	mixins: [BaseCMixin],

	actions: {
		ingest: {
			callers: ["api"], scopes: ["transactions:write"],
			// The gateway passes the raw body (mergeParams off): an object, an array or NDJSON text.
			params: { body: { type: "any" } },
			async handler(ctx: Context<{ body: unknown }, MeshMeta, MeshLocals>) {
				const { items, errors: parseErrors, tooMany } = splitBody(ctx.params.body, config.ingestMaxMovements);
				if (tooMany) {
					throw new Errors.MoleculerClientError(`At most ${config.ingestMaxMovements} movements per request`, 413, "TOO_MANY_MOVEMENTS", { max: config.ingestMaxMovements });
				}
				const { movements, errors } = validateMovements(items);
				const all = [...parseErrors, ...errors].sort((a, b) => a.index - b.index);
				if (all.length > 0 || movements.length === 0) {
					// All or nothing: a batch with a bad line is refused whole, every bad line named by its index.
					throw new Errors.MoleculerClientError(
						movements.length === 0 && all.length === 0 ? "No movement in the body" : "Some movements are invalid; nothing was accepted",
						422, "VALIDATION_ERROR", all.slice(0, MAX_REPORTED_ERRORS));
				}
				const records = toRecords(movements, this.activitySubject);
				// One message per slice; its id comes from its movements' ids, so a resent request is
				// dropped by JetStream's duplicate window before it costs Elasticsearch anything.
				const slices: MovementRecord[][] = [];
				for (let i = 0; i < records.length; i += RECORDS_PER_MESSAGE) slices.push(records.slice(i, i + RECORDS_PER_MESSAGE));
				await Promise.all(slices.map(slice => {
					const msgID = createHash("sha256").update(slice.map(r => r.movement_id).join(",")).digest("base64url");
					return this.broker.channels.publish("transactions", { records: slice } satisfies MovementBatch, msgID);
				}));
				return { accepted: records.length };
			}
		}
	},

	methods: {
		/**
		 * Writes the movements of a batch of messages with one bulk request. A message is acked when all
		 * its movements are in (created, or 409: already there); poison movements go to the dead letters;
		 * anything else sends the whole message back for a retry, which its 409s make harmless.
		 * Movements of a subject erased at or after their message was accepted are dropped (or removed
		 * again, if an erasure overtook the write): docs/erasure.md.
		 */
		async writeBatch(batch: Delivery<MovementBatch>[]) {
			const work: Work[] = [];
			for (const d of batch) {
				const records = d.data?.records;
				if (Array.isArray(records) && records.length > 0 && records.every(isRecord)) work.push({ d, records, drop: [] });
				else await this.deadLetter(d, "not a movement batch", d.msg.string(), "unknown");
			}
			if (work.length === 0) return;
			let erased: Map<string, number>;
			try {
				erased = await this.erasedSubjects(work.flatMap(w => w.records.map(r => r.subject)), Math.min(...work.map(w => acceptedAt(w.d))));
			} catch (err) {
				this.retryLater(work.map(w => w.d), err);
				return;
			}
			for (const w of work) [w.records, w.drop] = splitErased(w.records, erased, acceptedAt(w.d));
			const receivedAt = new Date().toISOString();
			// A create per movement; a delete per dropped one, in case an earlier delivery wrote it before its erasure.
			let items: Record<"create" | "delete", estypes.BulkResponseItem>[];
			try {
				const res = await this.es.bulk({
					operations: work.flatMap(w => [
						...w.records.flatMap(r => [{ create: { _index: index.movements(), _id: r.movement_id } }, { ...r, received_at: receivedAt }]),
						...w.drop.map(r => ({ delete: { _index: index.movements(), _id: r.movement_id } }))
					])
				});
				items = res.items as typeof items;
			} catch (err) {
				this.retryLater(work.map(w => w.d), err);
				return;
			}
			let at = 0;
			const done: Work[] = [];
			const deadSubjects = new Set<string>();
			for (const w of work) {
				let retry: estypes.ErrorCause | null = null;
				for (const record of w.records) {
					const result = items[at++].create;
					if (!result.error || result.status === 409) continue;
					if (POISON.has(result.error.type)) {
						await this.deadLetter(w.d, `${result.error.type}: ${result.error.reason ?? ""}`.slice(0, 300), JSON.stringify(record), record.subject);
						deadSubjects.add(record.subject);
					} else retry = result.error;
				}
				for (const _ of w.drop) {
					const result = items[at++].delete;
					if (result.error) retry = result.error;
				}
				if (retry) this.retryLater([w.d], retry);
				else done.push(w);
			}
			await this.settleAfterErasures(done, deadSubjects);
		},

		/**
		 * Checks the tombstones again once the movements are in: an erasure that began while they were being
		 * written either is seen here, and they are removed, or began after this check, and its own delete
		 * pass (after its tombstone) finds them. Acks what is settled; sends the rest back.
		 */
		async settleAfterErasures(done: Work[], deadSubjects: Set<string>) {
			if (done.length === 0) return;
			try {
				const erased = await this.erasedSubjects(done.flatMap(w => w.records.map(r => r.subject)), Math.min(...done.map(w => acceptedAt(w.d))));
				const late = done.flatMap(w => splitErased(w.records, erased, acceptedAt(w.d))[1]);
				if (late.length > 0) {
					const res = await this.es.bulk({ refresh: "wait_for", operations: late.map(r => ({ delete: { _index: index.movements(), _id: r.movement_id } })) });
					if (res.errors) throw Object.assign(new Error("Elasticsearch refused some deletes"), { name: "ResponseError", meta: { statusCode: 503 } });
					for (const subject of new Set(late.map(r => r.subject))) if (deadSubjects.has(subject)) await this.broker.channels.purge("deadLetters", subject);
				}
			} catch (err) {
				this.retryLater(done.map(w => w.d), err);
				return;
			}
			for (const w of done) w.d.msg.ack();
		},

		retryLater(deliveries: Delivery<MovementBatch>[], err: unknown) {
			const attempts = deliveries[0]?.msg.info.redeliveryCount ?? 1;
			const delay = Math.min(30_000, 500 * 2 ** Math.min(attempts, 6));
			const e = err as Thrown;
			if (isEsUnavailable(err) || e?.type) this.logger.warn(`Elasticsearch not taking ${deliveries.length} movement(s); retry in ${delay} ms:`, e?.name ?? e?.type);
			else this.logger.error("Bulk write failed:", e?.name, e?.message);
			for (const d of deliveries) d.msg.nak(delay);
		},

		/**
		 * Parks what can never be written, with the reason, under its subject (an erasure purges it); a
		 * poison movement does not hold back its batch.
		 */
		async deadLetter(d: Delivery<MovementBatch>, reason: string, payload: string, subject: string) {
			await this.broker.channels.publish("deadLetters", { reason, at: new Date().toISOString(), stream_seq: d.msg.seq, payload: payload.slice(0, 4096) }, undefined, SUBJECT_TOKEN.test(subject) ? subject : "unknown");
			if (reason === "not a movement batch") d.msg.term();
		}
	},

	channels: {
		// Up to 5 messages (5000 movements) per bulk request, two requests in flight.
		transactions: { durable: "elasticsearch-writer", batchSize: 5, parallel: 2, handler(batch: Delivery<MovementBatch>[]) { return this.writeBatch(batch); } }
	}
};

// Checked above against its own `this`; handed over as Moleculer takes a schema, untyped (types/mixin.ts).
export default TransactionIngestService as unknown as ServiceSchema;
