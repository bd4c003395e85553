import { createHash } from "node:crypto";

/**
 * Write marks (docs/idempotency.md, "Base B"): a profile written under an Idempotency-Key records, in the
 * same single-document update as the write, `writes.<mark> = <the write's moment>`, one field per key. A
 * retry of that key finds its mark and is answered from it instead of writing again; a write of another key
 * adds its own field and never erases this one.
 */
export const WRITE_MARKS = "writes";

/** How long a mark is kept: as long as Base A keeps the key's claim (a retry later than that starts afresh). */
export const MARK_TTL_MS = 24 * 3_600_000;

/** The field of a consumer's key: a digest, so that neither the consumer nor its key is stored in Base B. */
export function markOf(consumer: string, key: string): string {
	return `k${createHash("sha256").update(consumer).update("\0").update(key).digest("hex").slice(0, 32)}`;
}

/** The dotted path of a mark, for a filter or an update. */
export function markPath(mark: string): string {
	return `${WRITE_MARKS}.${mark}`;
}

/** The marks older than MARK_TTL_MS at `now`, as an `$unset` document (they go with the next keyed write). */
export function expiredMarks(marks: Record<string, Date> | undefined, now: Date): Record<string, ""> {
	return Object.fromEntries(
		Object.entries(marks ?? {}).filter(([, at]) => now.getTime() - new Date(at).getTime() > MARK_TTL_MS).map(([mark]) => [markPath(mark), ""])
	);
}

/** What a retry learns from a mark: whether the write it recognises created the profile (201) or replaced it (200). */
export function createdByMark(doc: { createdAt?: Date; [WRITE_MARKS]?: Record<string, Date> }, mark: string): boolean {
	const at = doc[WRITE_MARKS]?.[mark];
	return at !== undefined && doc.createdAt !== undefined && new Date(doc.createdAt).getTime() === new Date(at).getTime();
}
