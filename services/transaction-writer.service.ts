import type { estypes } from "@elastic/elasticsearch";
import type { ServiceSchema, ServiceSettingSchema } from "moleculer";
import { BaseCMixin, type BaseCThis, isEsUnavailable } from "../mixins/base-c.mixin";
import { acceptedAt, type Delivery } from "../middlewares/channels.middleware";
import { SUBJECT_TOKEN } from "../lib/mesh/streams";
import type { Thrown } from "../lib/errors";
import { index } from "../lib/base-c/indices";
import { isMovementRecord, type MovementBatch, type MovementRecord } from "../lib/base-c/movement";

/** Elasticsearch refusals that will never succeed however often they are retried: dead letters. */
const POISON = new Set(["mapper_parsing_exception", "document_parsing_exception", "illegal_argument_exception", "strict_dynamic_mapping_exception"]);

interface TransactionWriterMethods {
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
 * Base C's writer (group base-c): reads the movements base-c-front's transaction-ingest put on the
 * transactions channel, already pseudonymised, and writes them to Elasticsearch in bulk under their
 * idempotent ids, acknowledging each message only after Elasticsearch confirmed it. Elasticsearch
 * away means back-pressure and catch-up. It has no action: nothing but the channel reaches it, and
 * it never holds PSEUDONYM_KEY nor sees a CPF (a record that is not pseudonymised is a dead letter).
 */
const TransactionWriterService: ServiceSchema<ServiceSettingSchema, TransactionWriterMethods, BaseCThis> = {
	name: "transaction-writer",
	mixins: [BaseCMixin],

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
				if (Array.isArray(records) && records.length > 0 && records.every(isMovementRecord)) work.push({ d, records, drop: [] });
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
export default TransactionWriterService as unknown as ServiceSchema;
