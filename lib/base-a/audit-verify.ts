import type { KeyObject } from "node:crypto";
import type { DataKey } from "../../config/keys";
import { chainKey, type Checkpoint, GENESIS_HASH, messageDigest, openCheckpoint, rowMac } from "./audit-chain";

/** A row of audit_log as verification reads it (seq and time as exact text). */
export interface StoredRow {
	seq: string;
	at_us: string;
	consumer: string;
	action: string;
	cpf_bidx: string | null;
	request_id: string | null;
	outcome: string;
	prev_hash: string;
	hash: string;
	key_id: string | null;
	/** Before the epoch: whether the row's SHA-256 (audit_row_hash) matches; null from the epoch on. */
	legacy_ok: boolean | null;
}

/** Rows with seq > `after` (and < `epoch` marked by their SHA-256), in order, `limit` at most. */
export const ROWS_SQL = `
	SELECT seq::text, (extract(epoch FROM at) * 1000000)::bigint::text AS at_us, consumer, action, cpf_bidx, request_id,
	       outcome, prev_hash, hash, key_id, CASE WHEN a.seq < $3 THEN hash = audit_row_hash(a) END AS legacy_ok
	  FROM audit_log a WHERE a.seq > $1 ORDER BY a.seq LIMIT $2`; // a.seq: by number, not by the text output column

/** Where verification reads from: Base A's rows, the checkpoint stream, the keys. */
export interface VerifySources {
	rows(after: number, limit: number, epoch: number): Promise<StoredRow[]>;
	/** The highest seq in the log (0: empty). */
	head(): Promise<number>;
	/** The seq of the marker row that starts the keyed chain (the first), or null. */
	markerSeq(): Promise<number | null>;
	/** A checkpoint message by stream sequence, or the last; null when absent. */
	message(seq?: number): Promise<{ seq: number; data: Uint8Array } | null>;
	keys: readonly DataKey[];
	/** base-a's public key: the checkpoints' signer. */
	publicKey: KeyObject;
	namespace: string;
	batchSize?: number;
}

export interface Broken {
	seq: number;
	reason: string;
}

/** A checkpoint that verification found signed and in its place in the stream. */
export interface GoodCheckpoint {
	streamSeq: number;
	cp: Checkpoint;
}

export interface VerifyResult {
	ok: boolean;
	mode: "full" | "incremental";
	/** Rows checked. */
	rows: number;
	head: number;
	headHash: string;
	/** The newest good checkpoint (the next incremental run starts there). */
	checkpoint: GoodCheckpoint | null;
	broken: Broken[];
}

const MAX_BROKEN = 20;

/**
 * Checks the checkpoint messages `from`…`to` of the stream: each signed by base-a, for this namespace,
 * naming the message just before it by its digest (a replayed or inserted message breaks that).
 */
export async function checkCheckpoints(src: VerifySources, from: number, to: number, broken: Broken[]): Promise<GoodCheckpoint[]> {
	const good: GoodCheckpoint[] = [];
	let prev = from > 1 ? await src.message(from - 1) : null;
	for (let s = Math.max(from, 1); s <= to; s++) {
		const msg = await src.message(s);
		if (!msg) {
			broken.push({ seq: 0, reason: `checkpoint message ${s} missing` });
			prev = null;
			continue;
		}
		const cp = openCheckpoint(msg.data, src.publicKey);
		if (!cp || cp.namespace !== src.namespace) broken.push({ seq: cp?.seq ?? 0, reason: `checkpoint message ${s} forged or altered` });
		else if (cp.prevSeq !== s - 1 || (prev && cp.prevDigest !== messageDigest(prev.data))) broken.push({ seq: cp.seq, reason: `checkpoint message ${s} out of its chain (replayed or replaced)` });
		else if (good.length > 0 && cp.seq < good[good.length - 1].cp.seq) broken.push({ seq: cp.seq, reason: `checkpoint message ${s} goes back` });
		else good.push({ streamSeq: s, cp });
		prev = msg;
	}
	return good;
}

/**
 * Verifies the audit log (docs/audit.md). Full: every checkpoint and every row. Incremental: the
 * checkpoints published since `from` (the last good one; without it, the last two) and the rows from
 * the oldest good checkpoint among them to the head. Rows are read in bounded batches.
 */
export async function verifyLog(src: VerifySources, full: boolean, from?: GoodCheckpoint | null): Promise<VerifyResult> {
	const broken: Broken[] = [];
	const last = await src.message();
	const lastSeq = last?.seq ?? 0;
	const firstMsg = full ? 1 : from ? from.streamSeq + 1 : Math.max(1, lastSeq - 1);
	// Messages cannot be deleted (deny_delete): fewer than this node saw means the stream was removed or replaced.
	if (from && !full && lastSeq < from.streamSeq) broken.push({ seq: 0, reason: `the checkpoint stream ends before message ${from.streamSeq}, which this node verified` });
	const read = await checkCheckpoints(src, firstMsg, lastSeq, broken);
	const good = from && !full ? [from, ...read] : read;
	const newest = good.length > 0 ? good[good.length - 1] : null;

	const marker = await src.markerSeq();
	const epoch = newest?.cp.epoch ?? marker;
	if (epoch === null) broken.push({ seq: 0, reason: "the keyed chain's marker row is missing" });
	else if (marker !== epoch) broken.push({ seq: epoch, reason: "the keyed chain's marker row is missing or moved" });
	const keyedFrom = epoch ?? Number.MAX_SAFE_INTEGER;

	// Where the rows are taken up: the start, or the oldest good checkpoint of this run (its row must match it).
	let seq = 0;
	let hash = GENESIS_HASH;
	let startMissing = false;
	const start = full ? null : good[0] ?? null;
	const expected = new Map(good.map(g => [g.cp.seq, g]));
	if (start) {
		const [row] = await src.rows(start.cp.seq - 1, 1, keyedFrom);
		if (!row || Number(row.seq) !== start.cp.seq) startMissing = true;
		else if (row.hash !== start.cp.hash) broken.push({ seq: start.cp.seq, reason: `row differs from checkpoint message ${start.streamSeq}` });
		seq = start.cp.seq;
		hash = start.cp.hash;
	} else if (!full && epoch !== null && epoch > 1) {
		// No checkpoint yet: the keyed rows, from the marker on.
		const [row] = await src.rows(epoch - 2, 1, keyedFrom);
		if (row && Number(row.seq) === epoch - 1) {
			seq = epoch - 1;
			hash = row.hash;
		}
	}

	let rows = 0;
	const batch = src.batchSize ?? 5000;
	let page = await src.rows(seq, batch, keyedFrom);
	for (;;) {
		// The next batch is read while this one is checked.
		const next = page.length === batch ? src.rows(Number(page[page.length - 1].seq), batch, keyedFrom) : null;
		next?.catch(() => undefined);
		for (const row of page) {
			const n = Number(row.seq);
			rows++;
			let reason: string | null = null;
			if (n !== seq + 1) reason = "row missing before it";
			else if (row.prev_hash !== hash) reason = "chain link broken";
			if (n < keyedFrom) {
				if (!row.legacy_ok) reason = "row changed";
			} else {
				const key = chainKey(src.keys, row.key_id);
				const mac = key && rowMac(key, {
					seq: row.seq, atMicros: row.at_us, consumer: row.consumer, action: row.action, cpfBidx: row.cpf_bidx,
					requestId: row.request_id, outcome: row.outcome, prevHash: row.prev_hash, keyId: row.key_id!
				});
				if (mac !== row.hash) reason = "row changed";
			}
			const cp = expected.get(n);
			if (!reason && cp && cp.cp.hash !== row.hash) reason = `row differs from checkpoint message ${cp.streamSeq}`;
			if (reason && broken.length < MAX_BROKEN) broken.push({ seq: n, reason });
			seq = n;
			hash = row.hash;
		}
		if (!next) break;
		page = await next;
	}

	// The rows read end where the log ends, unless none was read after a checkpoint's row that is missing.
	const head = rows > 0 || !startMissing ? seq : await src.head();
	if (newest && head < newest.cp.seq) {
		broken.push({ seq: head + 1, reason: head === 0 ? `the log is empty but checkpoint message ${newest.streamSeq} names row ${newest.cp.seq}: truncated` : `rows ${head + 1}–${newest.cp.seq} missing: the log ends before checkpoint message ${newest.streamSeq}` });
	} else if (startMissing) {
		broken.unshift({ seq: start!.cp.seq, reason: `row missing: checkpoint message ${start!.streamSeq} names it` });
	}
	return { ok: broken.length === 0, mode: full ? "full" : "incremental", rows, head, headHash: hash, checkpoint: newest, broken };
}
