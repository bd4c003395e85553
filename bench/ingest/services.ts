// What transaction-ingest, transaction-writer and activity do, as this benchmark copies them for its raw sides (the copies
// checkInSync() in bench/ingest.ts watches): the consumer's batching, the bulk body, the msearch.
import type { Client } from "@elastic/elasticsearch";
import type { MovementRecord } from "../../lib/base-c/movement";
import { formatDate } from "../../lib/dates";
import { fromCents } from "../../lib/money";

/** transaction-writer's consumer: up to 5 messages of 1000 per bulk request (two in flight); checkInSync() watches it. */
export const CONSUMER_BATCH = 5000;
/** transaction-ingest.ingest publishes a request's records as messages of this many (RECORDS_PER_MESSAGE). */
export const PUBLISH_CHUNK = 1000;
/** The durable consumer transaction-writer reads TRANSACTIONS with. */
export const CONSUMER_DURABLE = "elasticsearch-writer";

/** The service's bulk body for a batch (transaction-writer.writeBatch): create under movement_id, received_at once per batch. */
export function serviceOperations(index: string, batch: MovementRecord[]): object[] {
	const receivedAt = new Date().toISOString();
	return batch.flatMap(r => [{ create: { _index: index, _id: r.movement_id } }, { ...r, received_at: receivedAt }]);
}

/** activity.get's msearch (services/activity.service.ts), the same three searches; checkInSync() watches them. */
function activitySearches(prefix: string, subject: string) {
	const bySubject = { term: { subject } };
	return [
		{ index: `${prefix}-consultations` }, { size: 1, query: bySubject, sort: [{ at: "desc" }], _source: ["at"] },
		{ index: `${prefix}-movements` }, { size: 1, query: { bool: { filter: [bySubject, { term: { tipo: "cartao" } }] } }, sort: [{ data: "desc" }, { movement_id: "desc" }], _source: ["data", "valor_cents"] },
		{ index: `${prefix}-movements` }, { size: 20, query: bySubject, sort: [{ data: "desc" }, { movement_id: "desc" }], _source: ["tipo", "valor_cents", "data"] }
	];
}

/** The msearch, then payload C built from it as activity.get builds it. */
export async function rawActivity(es: Client, prefix: string, subjectOf: (cpf: string) => string, cpf: string) {
	const { responses } = await es.msearch({ searches: activitySearches(prefix, subjectOf(cpf)) as any });
	for (const r of responses as any[]) if (r.error) throw new Error(r.error.type);
	const [consultation, card, recent] = (responses as any[]).map(r => r.hits.hits.map((h: any) => h._source));
	if (consultation.length === 0 && recent.length === 0) throw new Error("no activity for this CPF");
	return {
		cpf,
		ultimaConsulta: consultation[0] ? formatDate(new Date(consultation[0].at)) : null,
		ultimaCompraCC: card[0] ? { data: formatDate(card[0].data), valor: fromCents(card[0].valor_cents) } : null,
		movimentacaoFinanceira: recent.map((m: any) => ({ tipo: m.tipo, valor: fromCents(m.valor_cents), data: formatDate(m.data) }))
	};
}
