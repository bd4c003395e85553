import { createHash } from "node:crypto";
import type { estypes } from "@elastic/elasticsearch";
import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { BaseCMixin, type BaseCThis, ES_READ } from "../mixins/base-c.mixin";
import { acceptedAt, type Delivery } from "../middlewares/channels.middleware";
import type { MeshLocals, MeshMeta } from "../middlewares/zero-trust.middleware";
import type { ConsultationMessage } from "../middlewares/consultation.middleware";
import { index } from "../lib/base-c/indices";
import { MOVEMENT_TYPES, MOVEMENTS_QUERY } from "../lib/base-c/movement";
import type { MovementStats } from "../lib/credit-score/inputs";
import { formatDate, todayIso } from "../lib/dates";
import { fromCents } from "../lib/money";
import { InvalidFieldError, NotFoundError, type Thrown } from "../lib/errors";
import { subjectParam } from "../lib/base-c/subject";
import { type BySubject, type ByTipo, decodeCursor, encodeCursor, EXPORT_MAX_CONSULTATIONS, EXPORT_MAX_MOVEMENTS, type Hit, type MovementDoc, movementView, type SearchAnswer } from "../lib/base-c/activity-views";
import { BATCH_CHUNK } from "../lib/batch";
import { NEWEST_MOVEMENTS, payloadCSearches, RECENT_MOVEMENTS } from "../lib/base-c/payload-c";
import { CONSULTATION_STATS_DAYS, movementAggs, movementPeriods, movementStatsOf, scoreStatsSearches, type StatsAggs } from "../lib/base-c/score-stats";


/** A consultation as the channel brings it (middlewares/consultation.middleware.ts) and Base C keeps it: one subject, or a batch's. */
type Consultation = Omit<ConsultationMessage, "subject"> & { subject?: string; subjects?: string[] };

/** Consultations per bulk request. */
const BULK_DOCS = 5000;

/** A batch's list of subjects, bounded by the batch's chunk. */
const isSubjectList = (v: unknown): v is string[] => Array.isArray(v) && v.length > 0 && v.length <= BATCH_CHUNK && v.every(s => typeof s === "string");

/** The window of consultationStats: the consultations of the last 90 days (lib/base-c/score-stats.ts). */
export { CONSULTATION_STATS_DAYS };

interface ActivityMethods {
	/** Every document of a subject in one index, through a point in time, in pages. */
	subjectDocs(indexName: string, subject: string, source: string[] | false): AsyncGenerator<Hit<MovementDoc & Consultation>[]>;
	/** The consumer's side of the consultations channel. */
	recordConsultations(batch: Delivery<Consultation>[]): Promise<void>;
	/** Writes the subject's erasure tombstone, dated now. */
	tombstone(subject: string): Promise<void>;
}

/** A stored consultation as it leaves Base C: when, who (a consumer id; names are Base A's), why. */
const consultationView = (c: Consultation) => ({ at: new Date(c.at).toISOString(), consumer: c.consumer ?? "unknown", purpose: c.purpose ?? null });
const CONSULTATION_FIELDS = ["at", "consumer", "purpose"];

/**
 * Base C's reader (group base-c, which holds Elasticsearch's credential and never PSEUDONYM_KEY): payload
 * C of a subject (last consultation, last card purchase, latest movements), the movements with filters,
 * totals and paging, the score's statistics, export and erasure. Every action takes the pseudonym
 * (`subject`, refused when shaped otherwise), never a CPF: the caller computes it (activity-front for the
 * API, report and credit-score, privacy) and puts the CPF back in its answer. Keeps `ultimaConsulta` from
 * the durable consultations channel.
 */
const ActivityService: ServiceSchema<ServiceSettingSchema, ActivityMethods, BaseCThis> = {
	name: "activity",
	mixins: [BaseCMixin],

	actions: {
		get: {
			callers: ["base-c-front", "report"], scopes: ["activity:read"],
			params: { $$strict: true, subject: subjectParam },
			async handler(ctx: Context<{ subject: string }, MeshMeta, MeshLocals>) {
				const { subject } = ctx.params;
				const bySubject = { term: { subject } };
				// One round trip for the three questions payload C asks.
				const { responses } = await this.es.msearch({
					searches: [
						{ index: index.consultations() }, { size: 1, query: bySubject, sort: [{ at: "desc" }], _source: ["at"] },
						{ index: index.movements() }, { size: 1, query: { bool: { filter: [bySubject, { term: { tipo: "cartao" } }] } }, sort: NEWEST_MOVEMENTS, _source: ["data", "valor_cents"] },
						{ index: index.movements() }, { size: RECENT_MOVEMENTS, query: bySubject, sort: NEWEST_MOVEMENTS, _source: ["tipo", "valor_cents", "data"] }
					]
				}, ES_READ);
				// The three searches' sources, each with the fields it asked for.
				const answers = responses as SearchAnswer<MovementDoc & Consultation>[];
				for (const r of answers) if (r.error) throw Object.assign(new Error(r.error.type), { name: "ResponseError", meta: { statusCode: r.status } });
				const [consultation, card, recent] = answers.map(r => r.hits.hits.map(h => h._source));
				if (consultation.length === 0 && recent.length === 0) throw new NotFoundError("Activity for this CPF");
				return {
					ultimaConsulta: consultation[0] ? formatDate(new Date(consultation[0].at)) : null,
					ultimaCompraCC: card[0] ? { data: formatDate(card[0].data), valor: fromCents(card[0].valor_cents) } : null,
					movimentacaoFinanceira: recent.map(movementView)
				};
			}
		},

		/**
		 * Payload C of a chunk of a batch (POST /reports/batch): one _msearch of three searches over the
		 * whole set (lib/base-c/payload-c.ts), the answers activity.get gives, in the CPFs' order; null
		 * where Base C knows nothing of the person.
		 */
		getMany: {
			callers: ["report"], scopes: ["activity:read"],
			params: { $$strict: true, subjects: { type: "array", items: subjectParam, min: 1, max: BATCH_CHUNK } },
			async handler(ctx: Context<{ subjects: string[] }, MeshMeta, MeshLocals>) {
				const { subjects } = ctx.params;
				const { responses } = await this.es.msearch({ searches: payloadCSearches(subjects, index.movements(), index.consultations()) }, ES_READ);
				const answers = responses as SearchAnswer<unknown, BySubject<Record<string, any>>>[];
				for (const r of answers) if (r.error) throw Object.assign(new Error(r.error.type), { name: "ResponseError", meta: { statusCode: r.status } });
				const [seen, card, recent] = answers.map(r => new Map(r.aggregations.bySubject.buckets.map(b => [b.key, b])));
				return subjects.map(s => {
					const moves: MovementDoc[] = recent.get(s)?.recent.hits.hits.map((h: Hit<MovementDoc>) => h._source) ?? [];
					const at: number | undefined = seen.get(s)?.last.value ?? undefined;
					if (at === undefined && moves.length === 0) return null;
					const last: MovementDoc | undefined = card.get(s)?.last.hits.hits[0]?._source;
					return {
						ultimaConsulta: at === undefined ? null : formatDate(new Date(at)),
						ultimaCompraCC: last ? { data: formatDate(last.data), valor: fromCents(last.valor_cents) } : null,
						movimentacaoFinanceira: moves.map(movementView)
					};
				});
			}
		},

		movements: {
			callers: ["base-c-front"], scopes: ["activity:read"],
			params: {
				$$strict: true,
				subject: subjectParam,
				...MOVEMENTS_QUERY
			},
			async handler(ctx: Context<{ subject: string; from?: string; to?: string; tipo?: string; size: number; after?: string }, MeshMeta, MeshLocals>) {
				const { subject, from, to, tipo, size, after } = ctx.params;
				if (from && to && from > to) throw new InvalidFieldError("from", "'from' is after 'to'.", "range");
				const filter: object[] = [{ term: { subject } }];
				if (from || to) filter.push({ range: { data: { ...(from && { gte: from }), ...(to && { lte: to }) } } });
				if (tipo) filter.push({ term: { tipo } });
				const res = await this.es.search({
					index: index.movements(),
					size,
					query: { bool: { filter } },
					sort: [{ data: "desc" }, { movement_id: "desc" }],
					search_after: after ? decodeCursor(after) : undefined,
					_source: ["tipo", "valor_cents", "data"],
					track_total_hits: true,
					aggs: { byTipo: { terms: { field: "tipo", size: MOVEMENT_TYPES.length }, aggs: { cents: { sum: { field: "valor_cents" } } } } }
				}, ES_READ) as SearchAnswer<MovementDoc, ByTipo>;
				const hits = res.hits.hits;
				const totals = Object.fromEntries(res.aggregations.byTipo.buckets.map(b => [b.key, { count: b.doc_count, valor: fromCents(Math.round(b.cents.value)) }]));
				return {
					total: res.hits.total.value,
					totals,
					movements: hits.map(h => movementView(h._source)),
					next: hits.length === size ? encodeCursor(hits[hits.length - 1].sort) : null
				};
			}
		},

		/**
		 * The credit score's Base C part (lib/credit-score/inputs.ts): movements of the last 180 days,
		 * their volume, card use, and in how many of the six 30-day periods there were any. One search, no hits.
		 */
		movementStats: {
			callers: ["report"], scopes: ["score:read"],
			params: { $$strict: true, subject: subjectParam },
			async handler(ctx: Context<{ subject: string }, MeshMeta, MeshLocals>): Promise<MovementStats> {
				const today = todayIso();
				const periods = movementPeriods(today);
				const res = await this.es.search({
					index: index.movements(), size: 0, track_total_hits: true,
					query: { bool: { filter: [{ term: { subject: ctx.params.subject } }, { range: { data: { gte: periods.at(-1)!.from, lte: today } } }] } },
					aggs: movementAggs(periods)
				}, ES_READ) as SearchAnswer<object, StatsAggs>;
				return movementStatsOf(res.hits.total.value, res.aggregations);
			}
		},

		/**
		 * The credit score's two Base C parts for a chunk of a batch (POST /scores/batch): one _msearch of two
		 * searches over the whole set (`terms` on the subjects, aggregated per subject), the same
		 * definitions as movementStats and consultationStats. A subject with nothing has zeros, as there.
		 */
		scoreStatsMany: {
			callers: ["report"], scopes: ["score:read"],
			params: { $$strict: true, subjects: { type: "array", items: subjectParam, min: 1, max: BATCH_CHUNK } },
			async handler(ctx: Context<{ subjects: string[] }, MeshMeta, MeshLocals>) {
				const { subjects } = ctx.params;
				const today = todayIso();
				const { responses } = await this.es.msearch({ searches: scoreStatsSearches(subjects, today, index.movements(), index.consultations()) }, ES_READ);
				const answers = responses as SearchAnswer<unknown, BySubject<object>>[];
				for (const r of answers) if (r.error) throw Object.assign(new Error(r.error.type), { name: "ResponseError", meta: { statusCode: r.status } });
				const moves = new Map((answers[0] as SearchAnswer<unknown, BySubject<StatsAggs>>).aggregations.bySubject.buckets.map(b => [b.key, movementStatsOf(b.doc_count, b)]));
				const seen = new Map((answers[1] as SearchAnswer<unknown, BySubject<{ consumers: { value: number } }>>).aggregations.bySubject.buckets
					.map(b => [b.key, { consultations90d: b.doc_count, distinctConsumers90d: b.consumers.value }]));
				return subjects.map(s => ({
					movements: moves.get(s) ?? { movements: 0, volumeCents: 0, cardMovements: 0, activePeriods: 0 },
					consultations: seen.get(s) ?? { consultations90d: 0, distinctConsumers90d: 0 }
				}));
			}
		},

		/**
		 * How often a CPF was consulted in the last 90 days and by how many distinct consumers (a
		 * cardinality aggregation on `consumer`): an input of the credit score. Not a consultation itself.
		 */
		consultationStats: {
			callers: ["report"], scopes: ["score:read"],
			visibility: "public",
			params: { $$strict: true, subject: subjectParam },
			async handler(ctx: Context<{ subject: string }, MeshMeta, MeshLocals>) {
				const res = await this.es.search({
					index: index.consultations(), size: 0, track_total_hits: true,
					query: { bool: { filter: [{ term: { subject: ctx.params.subject } }, { range: { at: { gte: `now-${CONSULTATION_STATS_DAYS}d` } } }] } },
					aggs: { consumers: { cardinality: { field: "consumer" } } }
				}, ES_READ) as SearchAnswer<unknown, { consumers: { value: number } }>;
				return { consultations90d: res.hits.total.value, distinctConsumers90d: res.aggregations.consumers.value };
			}
		},

		/**
		 * The consultations of a subject, newest first, paged with `after` (the privacy service serves them
		 * as GET /consultations/:cpf, with the consumers' names). Not a consultation itself.
		 */
		consultations: {
			callers: ["privacy"], scopes: ["consultations:read", "privacy:admin"],
			visibility: "public",
			params: {
				$$strict: true,
				subject: subjectParam,
				size: { type: "number", integer: true, min: 1, max: 200, default: 50 },
				after: { type: "string", max: 200, optional: true }
			},
			async handler(ctx: Context<{ subject: string; size: number; after?: string }, MeshMeta, MeshLocals>) {
				const { subject, size, after } = ctx.params;
				const res = await this.es.search({
					index: index.consultations(), size, query: { term: { subject } }, track_total_hits: true,
					sort: [{ at: "desc" }, { consultation_id: "desc" }], search_after: after ? decodeCursor(after) : undefined, _source: CONSULTATION_FIELDS
				}, ES_READ) as SearchAnswer<Consultation>;
				const hits = res.hits.hits;
				return {
					total: res.hits.total.value,
					consultations: hits.map(h => consultationView(h._source)),
					next: hits.length === size ? encodeCursor(hits[hits.length - 1].sort) : null
				};
			}
		},

		/** LGPD access: everything Base C holds under a subject (no size limit: it pages through). */
		export: {
			callers: ["privacy"], scopes: ["privacy:admin"],
			visibility: "public",
			params: { $$strict: true, subject: subjectParam },
			async handler(ctx: Context<{ subject: string }, MeshMeta, MeshLocals>) {
				const query = { term: { subject: ctx.params.subject } };
				const [moves, consulted] = await Promise.all([
					this.es.search({
						index: index.movements(), size: EXPORT_MAX_MOVEMENTS, query, track_total_hits: true,
						sort: [{ data: "desc" }, { movement_id: "desc" }], _source: ["tipo", "valor_cents", "data"]
					}) as Promise<unknown> as Promise<SearchAnswer<MovementDoc>>,
					this.es.search({ index: index.consultations(), size: EXPORT_MAX_CONSULTATIONS, query, track_total_hits: true, sort: [{ at: "desc" }, { consultation_id: "desc" }], _source: CONSULTATION_FIELDS }) as Promise<unknown> as Promise<SearchAnswer<Consultation>>
				]);
				const hits = moves.hits.hits;
				const movementsTotal = moves.hits.total.value;
				return {
					consultations: consulted.hits.hits.map(h => consultationView(h._source)),
					consultationsTotal: consulted.hits.total.value,
					movements: hits.map(h => movementView(h._source)),
					movementsTotal,
					// Where GET /activity/:cpf/movements?after= continues (the same order and cursor).
					movementsNext: movementsTotal > hits.length ? encodeCursor(hits[hits.length - 1].sort) : null
				};
			}
		},

		/**
		 * LGPD erasure: a tombstone of the subject first (every writer of Base C drops what was accepted
		 * before it: docs/erasure.md), then every movement and consultation of the subject, by bulk deletes
		 * (no _delete_by_query needed), then its dead letters. Idempotent.
		 */
		erase: {
			callers: ["privacy"],
			visibility: "public",
			params: { $$strict: true, subject: subjectParam },
			async handler(ctx: Context<{ subject: string }, MeshMeta, MeshLocals>) {
				const { subject } = ctx.params;
				await this.tombstone(subject);
				// Whatever a writer put in before the tombstone becomes searchable now, so the pass below finds it.
				await this.es.indices.refresh({ index: [index.movements(), index.consultations()] });
				let erased = 0;
				for (const target of [index.movements(), index.consultations()]) {
					const ids: string[] = [];
					for await (const hits of this.subjectDocs(target, subject, false)) ids.push(...hits.map(h => h._id));
					for (let i = 0; i < ids.length; i += 1000) {
						const res = await this.es.bulk({ refresh: "wait_for", operations: ids.slice(i, i + 1000).map(id => ({ delete: { _index: target, _id: id } })) });
						if (res.errors) throw Object.assign(new Error("Elasticsearch refused some deletes"), { name: "ResponseError", meta: { statusCode: 503 } });
						erased += res.items.length;
					}
				}
				const deadLetters = await this.broker.channels.purge("deadLetters", subject);
				return { erased, deadLetters };
			}
		}
	},

	methods: {
		/**
		 * The subject's tombstone at this moment. Base C's user may create and delete documents but never
		 * overwrite one: an older tombstone is deleted and created again (for that instant a writer may
		 * write what the delete pass that follows removes anyway).
		 */
		async tombstone(subject: string) {
			// Searchable before this returns: the writers find recent tombstones by a search (BaseCMixin.erasedSubjects).
			const write = () => this.es.create({ index: index.erasures(), id: subject, refresh: "wait_for", document: { subject, erased_at: new Date().toISOString() } });
			await write().catch(async (err: unknown) => {
				if ((err as { meta?: { statusCode?: number } })?.meta?.statusCode !== 409) throw err;
				await this.es.delete({ index: index.erasures(), id: subject, refresh: "wait_for" });
				await write();
			});
		},

		/** Every document of a subject in one index, through a point in time, in pages (works on any Elasticsearch). */
		async *subjectDocs(indexName: string, subject: string, source: string[] | false) {
			const pit = await this.es.openPointInTime({ index: indexName, keep_alive: "1m" });
			try {
				let after: unknown[] | undefined;
				for (;;) {
					const res = await this.es.search({
						pit: { id: pit.id, keep_alive: "1m" }, size: 1000, query: { term: { subject } },
						sort: [{ _shard_doc: "asc" }], search_after: after, _source: source
					}) as SearchAnswer<MovementDoc & Consultation>;
					if (res.hits.hits.length === 0) return;
					yield res.hits.hits;
					after = res.hits.hits[res.hits.hits.length - 1].sort;
				}
			} finally {
				await this.es.closePointInTime({ id: pit.id }).catch(() => undefined);
			}
		},

		/**
		 * Consultations land as documents with ids derived from their content: a redelivery is counted once.
		 * Those of a subject erased since are dropped, or removed again (as movements are: docs/erasure.md).
		 * A message of a batch (POST /scores/batch) carries `subjects`, one consultation each; it is acked
		 * once all of them are stored.
		 */
		async recordConsultations(batch: Delivery<Consultation>[]) {
			const valid = batch.filter(d => d.data && (typeof d.data.subject === "string" || isSubjectList(d.data.subjects)) && !Number.isNaN(Date.parse(d.data.at)));
			for (const d of batch) if (!valid.includes(d)) d.msg.term();
			if (valid.length === 0) return;
			// One document per subject, each remembering the delivery it came from and when that was accepted.
			interface Doc { owner: number; id: string; subject: string; accepted: number; source: object }
			const docs: Doc[] = valid.flatMap(({ data }, owner): Doc[] => {
				// Messages published before consumer and purpose existed carry neither: kept as "unknown" and null.
				const consumer = typeof data.consumer === "string" ? data.consumer.slice(0, 64) : "unknown";
				const purpose = typeof data.purpose === "string" ? data.purpose.slice(0, 64) : null;
				// Accepted when it happened, or when the stream took it, whichever came first.
				const accepted = Math.min(acceptedAt(valid[owner]), Date.parse(data.at));
				const subjects = isSubjectList(data.subjects) ? data.subjects : [data.subject!];
				return subjects.map(subject => {
					const id = createHash("sha256").update(`${subject}|${data.at}|${data.source}|${consumer}|${purpose}`).digest("base64url");
					return { owner, id, subject, accepted, source: { consultation_id: id, subject, at: data.at, source: String(data.source).slice(0, 64), consumer, purpose } };
				});
			});
			const erasedSince = (erased: Map<string, number>, d: Doc) => (erased.get(d.subject) ?? -Infinity) >= d.accepted;
			try {
				const oldest = Math.min(...docs.map(d => d.accepted));
				const before = await this.erasedSubjects(docs.map(d => d.subject), oldest);
				const failed = new Set<number>();
				// Bounded bulk requests, whatever batch messages the pull brought.
				for (let first = 0; first < docs.length; first += BULK_DOCS) {
					const slice = docs.slice(first, first + BULK_DOCS);
					const res = await this.es.bulk({
						operations: slice.flatMap((d): object[] => erasedSince(before, d)
							? [{ delete: { _index: index.consultations(), _id: d.id } }]
							: [{ create: { _index: index.consultations(), _id: d.id } }, d.source])
					});
					(res.items as Record<"create" | "delete", estypes.BulkResponseItem>[]).forEach((item, i) => {
						const r = item.create ?? item.delete;
						if (r.error && r.status !== 409) failed.add(slice[i].owner);
					});
				}
				const stored = docs.filter(d => !failed.has(d.owner));
				const after = await this.erasedSubjects(stored.map(d => d.subject), oldest);
				const late = stored.filter(d => erasedSince(after, d) && !erasedSince(before, d));
				if (late.length > 0) {
					const undo = await this.es.bulk({ refresh: "wait_for", operations: late.map(d => ({ delete: { _index: index.consultations(), _id: d.id } })) });
					if (undo.errors) throw Object.assign(new Error("Elasticsearch refused some deletes"), { name: "ResponseError", meta: { statusCode: 503 } });
				}
				valid.forEach((d, k) => (failed.has(k) ? d.msg.nak(2000) : d.msg.ack()));
			} catch (err) {
				this.logger.warn("Elasticsearch not taking consultations; retrying:", (err as Thrown)?.name);
				for (const d of valid) d.msg.nak(2000);
			}
		}
	},

	channels: {
		// Nobody waits for a consultation to land (it is searchable after the next refresh anyway): 200 ms
		// gathers a lookup burst into one bulk request and one erasure check (bench: issue 15 in the README).
		consultations: { durable: "activity", batchSize: 500, lingerMs: 200, handler(batch: Delivery<Consultation>[]) { return this.recordConsultations(batch); } }
	}
};

// Checked above against its own `this`; handed over as Moleculer takes a schema, untyped (types/mixin.ts).
export default ActivityService as unknown as ServiceSchema;
