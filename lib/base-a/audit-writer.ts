import type { DataKey } from "../../config/keys";
import { type ChainRow, EPOCH_MARKER, GENESIS_HASH, rowMac } from "./audit-chain";
import { CONSULTED_INSERT_SQL } from "../webhooks/events";

/** What one audit row records; the writer adds seq, time and the chain. */
export interface AuditEntry {
	consumer: string;
	action: string;
	cpfBidx: string | null;
	requestId: string | null;
	outcome: string;
	/** A consultation's `consulted` event, written with the row (docs/webhooks.md); needs cpfBidx. */
	consulted?: { id: string; data: Record<string, unknown>; namespace: string };
}

interface Pending {
	entry: AuditEntry;
	resolve(seq: number): void;
	reject(err: unknown): void;
}

/** Runs `work` in one transaction, handing it a function that runs a parameterised ($1…) statement and answers its rows. */
export type Transactor = <T>(work: (query: <R extends object>(sql: string, bind?: unknown[]) => Promise<R[]>) => Promise<T>) => Promise<T>;

/** Rows appended by one transaction at most. */
const MAX_BATCH = 500;

const INSERT_SQL = `
	INSERT INTO audit_log (seq, at, consumer, action, cpf_bidx, request_id, outcome, prev_hash, hash, key_id)
	SELECT s, 'epoch'::timestamptz + a * interval '1 microsecond', c, act, b, r, o, p, h, k
	  FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[])
	    AS u(s, a, c, act, b, r, o, p, h, k)`;

/**
 * Appends audit rows to the keyed chain (docs/audit.md). Rows waiting while a transaction runs go
 * together in the next one (group commit): under the chain's advisory lock (the insert trigger takes the
 * same one, so every process appends to one gapless chain) it reads the head, numbers and times the
 * rows with the database's clock, makes each row's HMAC with the current AUDIT_CHAIN_KEYS key, and
 * inserts them at once. The first append after migration 020 first writes the marker row that starts
 * the keyed chain (its epoch).
 */
export class AuditWriter {
	private readonly queue: Pending[] = [];
	private running?: Promise<void>;

	/** `transaction`: the service's Sequelize pool (mixins/base-a.mixin.ts) or a raw pg pool (the benchmarks'). */
	constructor(private readonly transaction: Transactor, private readonly keys: readonly DataKey[]) {}

	append(entry: AuditEntry): Promise<number> {
		return new Promise<number>((resolve, reject) => {
			this.queue.push({ entry, resolve, reject });
			this.running ??= this.drain().finally(() => (this.running = undefined));
		});
	}

	/** Makes sure the keyed chain has begun (the marker row exists); the seq of the head. */
	async begin(): Promise<number> {
		return this.transaction(q => this.write([], q));
	}

	private async drain(): Promise<void> {
		while (this.queue.length > 0) {
			const batch = this.queue.splice(0, MAX_BATCH);
			try {
				const head = await this.transaction(q => this.write(batch.map(p => p.entry), q));
				batch.forEach((p, i) => p.resolve(head - batch.length + 1 + i));
			} catch (err) {
				for (const p of batch) p.reject(err);
			}
		}
	}

	/** Appends the entries in one transaction (the marker first when the chain is not keyed yet); the new head's seq. */
	private async write(entries: AuditEntry[], query: Parameters<Parameters<Transactor>[0]>[0]): Promise<number> {
		await query("SELECT pg_advisory_xact_lock(hashtext('audit_log_chain'))");
		const [state] = await query<{ seq: string | null; hash: string | null; key_id: string | null; now_us: string }>(
			`SELECT l.seq::text, l.hash, l.key_id, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint::text AS now_us
			   FROM (SELECT 1) one LEFT JOIN (SELECT seq, hash, key_id FROM audit_log ORDER BY seq DESC LIMIT 1) l ON true`);
		const all = state.key_id === null ? [{ ...EPOCH_MARKER, cpfBidx: null, requestId: null }, ...entries] : entries;
		let seq = BigInt(state.seq ?? 0);
		if (all.length === 0) return Number(seq);
		let prevHash = state.hash ?? GENESIS_HASH;
		const { id: keyId, key } = this.keys[0];
		const rows: ChainRow[] = [];
		const hashes: string[] = [];
		for (const e of all) {
			seq += 1n;
			const row: ChainRow = { seq: String(seq), atMicros: state.now_us, consumer: e.consumer, action: e.action, cpfBidx: e.cpfBidx, requestId: e.requestId, outcome: e.outcome, prevHash, keyId };
			prevHash = rowMac(key, row);
			rows.push(row);
			hashes.push(prevHash);
		}
		const column = <K extends keyof ChainRow>(k: K) => rows.map(r => r[k]);
		await query(INSERT_SQL, [column("seq"), column("atMicros"), column("consumer"), column("action"), column("cpfBidx"), column("requestId"), column("outcome"), column("prevHash"), hashes, column("keyId")]);
		// A consultation audited is a consultation announced: its event commits with its row.
		const events = entries.filter(e => e.consulted && e.cpfBidx);
		if (events.length > 0) {
			await query(CONSULTED_INSERT_SQL, [events.map(e => e.consulted!.id), events.map(e => e.cpfBidx), events.map(e => JSON.stringify(e.consulted!.data)), events.map(e => e.consulted!.namespace)]);
		}
		return Number(seq);
	}
}
