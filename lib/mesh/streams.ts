import { RetentionPolicy, nanos } from "nats";
import type { Group } from "../../config/groups";

/**
 * The durable channels of the mesh (NATS JetStream), each created and managed only by the group that
 * owns it (the other groups' NATS users may not touch JetStream's API, only publish into what they feed).
 * Names and subjects are prefixed with the Moleculer namespace, so meshes sharing a NATS server
 * (dev and test, or two deployments) never consume each other's messages.
 */
export interface StreamSpec {
	name: string;
	subjects: string[];
	retention: RetentionPolicy;
	/** 0: kept for ever */
	max_age: number;
	owner: Group;
	/** No message may be deleted, nor the stream purged; the server refuses to lift either later. */
	deny_delete?: boolean;
	deny_purge?: boolean;
	/** Created once and never updated by the mesh (its owner's NATS user is not allowed to: docker/nats.conf). */
	fixed?: boolean;
}

export const STREAMS: Record<"transactions" | "deadLetters" | "consultations" | "erasures" | "events" | "auditCheckpoints", StreamSpec> = {
	/** Movements accepted by POST /transactions, until Elasticsearch has them. */
	transactions: { name: "TRANSACTIONS", subjects: ["transactions.movement"], retention: RetentionPolicy.Workqueue, max_age: nanos(7 * 24 * 3600_000), owner: "base-c" },
	/**
	 * Movements Elasticsearch refused for good, with the reason; each under `transactions.dead.<subject>`
	 * (the person's pseudonym, or `unknown`), so that an erasure purges a person's dead letters by subject.
	 */
	deadLetters: { name: "TRANSACTIONS_DLQ", subjects: ["transactions.dead", "transactions.dead.>"], retention: RetentionPolicy.Limits, max_age: nanos(30 * 24 * 3600_000), owner: "base-c" },
	/** Consultations of a CPF (pseudonymised), for Base C's ultimaConsulta; fed by Base A, Base B and report. */
	consultations: { name: "CONSULTATIONS", subjects: ["events.cpf.consulted"], retention: RetentionPolicy.Workqueue, max_age: nanos(7 * 24 * 3600_000), owner: "base-c" },
	/** LGPD erasures still to finish (a base was down); kept until every base confirmed. */
	erasures: { name: "PRIVACY_ERASURES", subjects: ["privacy.erase"], retention: RetentionPolicy.Workqueue, max_age: nanos(365 * 24 * 3600_000), owner: "privacy" },
	/**
	 * Base A's domain events (debt.created, debt.settled, person.changed, erased), relayed from its
	 * transactional outbox; each message's Nats-Msg-Id is the event id, so a re-relayed row is dropped.
	 * Kept (not a work queue) so that a new consumer or a replay can read them again.
	 */
	events: { name: "EVENTS", subjects: ["events.domain"], retention: RetentionPolicy.Limits, max_age: nanos(7 * 24 * 3600_000), owner: "base-a" },
	/** Signed checkpoints of the audit log's head (docs/audit.md): kept for ever, never deleted, appended by base-a only. */
	auditCheckpoints: {
		name: "AUDIT_CHECKPOINTS", subjects: ["audit.checkpoints"], retention: RetentionPolicy.Limits, max_age: 0, owner: "base-a",
		deny_delete: true, deny_purge: true, fixed: true
	}
};

export type StreamKey = keyof typeof STREAMS;

/** A token a stream's subject may be extended with (`transactions.dead.<token>`): no dot, no wildcard. */
export const SUBJECT_TOKEN = /^[A-Za-z0-9_-]{1,100}$/;

/** A stream's name, its subject (the first) and every subject it stores, within a namespace. */
export function channel(namespace: string, key: StreamKey): { name: string; subject: string; subjects: string[] } {
	const ns = namespace.replace(/[^A-Za-z0-9_-]/g, "_") || "default";
	const subjects = STREAMS[key].subjects.map(s => `${ns}.${s}`);
	return { name: `${ns}_${STREAMS[key].name}`, subject: subjects[0], subjects };
}
