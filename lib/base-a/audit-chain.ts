import { createHash, createHmac, sign, verify, type KeyObject } from "node:crypto";
import type { DataKey } from "../../config/keys";

/**
 * The keyed audit chain (docs/audit.md). Every row from the chain's epoch on carries
 * HMAC-SHA256(key, row fields + the hash of the row before it), made by the audit service with a key
 * the database never sees; the head of the chain is published at intervals as a checkpoint signed
 * with base-a's Ed25519 key, in a JetStream stream the database's owner cannot write.
 */

/** The hash before the first row. */
export const GENESIS_HASH = "0".repeat(64);
/** The row that starts the keyed chain: every row from it on is keyed. */
export const EPOCH_MARKER = { consumer: "group:base-a", action: "audit.chain", outcome: "keyed" } as const;

/** A row as the chain covers it; seq and `at` (microseconds since 1970) as decimal text, exact. */
export interface ChainRow {
	seq: string;
	atMicros: string;
	consumer: string;
	action: string;
	cpfBidx: string | null;
	requestId: string | null;
	outcome: string;
	prevHash: string;
	keyId: string;
}

/** The keyed hash of a row: HMAC-SHA256 under the key `row.keyId` names, hex. */
export function rowMac(key: Buffer, row: ChainRow): string {
	const fields = [row.seq, row.atMicros, row.consumer, row.action, row.cpfBidx, row.requestId, row.outcome, row.prevHash, row.keyId];
	return createHmac("sha256", key).update("credit-mesh audit row v1\n").update(JSON.stringify(fields)).digest("hex");
}

/** The key a row names, or undefined for an unknown id. */
export const chainKey = (keys: readonly DataKey[], id: string | null): Buffer | undefined => keys.find(k => k.id === id)?.key;

/** What a checkpoint states: the head of a namespace's log at a moment, and where its predecessor is. */
export interface Checkpoint {
	v: 1;
	namespace: string;
	/** The seq of the row that started the keyed chain. */
	epoch: number;
	seq: number;
	hash: string;
	at: string;
	node: string;
	/** The stream sequence of the checkpoint before this one (0: none) and the SHA-256 of its message. */
	prevSeq: number;
	prevDigest: string;
}

/** A checkpoint as stored: its text and base-a's signature of it. */
export interface SignedCheckpoint {
	payload: string;
	sig: string;
}

const signingInput = (payload: string) => Buffer.from(`credit-mesh audit checkpoint v1\n${payload}`);

export function signCheckpoint(cp: Checkpoint, key: KeyObject): SignedCheckpoint {
	const payload = JSON.stringify(cp);
	return { payload, sig: sign(null, signingInput(payload), key).toString("base64") };
}

/** The checkpoint a message carries when `key` signed it; null when it is malformed or not so signed. */
export function openCheckpoint(data: Uint8Array, key: KeyObject): Checkpoint | null {
	try {
		const msg = JSON.parse(Buffer.from(data).toString("utf8")) as SignedCheckpoint;
		if (typeof msg?.payload !== "string" || typeof msg.sig !== "string") return null;
		if (!verify(null, signingInput(msg.payload), key, Buffer.from(msg.sig, "base64"))) return null;
		const cp = JSON.parse(msg.payload) as Checkpoint;
		return cp?.v === 1 && Number.isSafeInteger(cp.seq) && /^[0-9a-f]{64}$/.test(cp.hash) ? cp : null;
	} catch {
		return null;
	}
}

/** The digest a checkpoint's successor names it by. */
export const messageDigest = (data: Uint8Array): string => createHash("sha256").update(data).digest("hex");
