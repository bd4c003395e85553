import { normalizeCpf } from "./cpf";
import type { ItemLimit } from "./errors";

/**
 * What every batch route shares (POST /scores/batch, POST /reports/batch): the body's CPFs, in input order,
 * and their chunks. The streaming, audit and consultations are mixins/batch.mixin.ts's.
 */

/** At most this many CPFs in one batch (POST /scores/batch, POST /reports/batch): more is a 413, found while the body is read. */
export const BATCH_MAX_CPFS = 10_000;
/** The 413 past BATCH_MAX_CPFS, from the gateway (while reading) or the batch itself. */
export const BATCH_LIMIT: ItemLimit = { max: BATCH_MAX_CPFS, type: "TOO_MANY_CPFS", what: "CPFs per batch" };
/** CPFs read per round: one query per base per chunk; the first lines leave after the first chunk. */
export const BATCH_CHUNK = 500;

/** One line of the batch answer: its position in the input, the CPF as given (digits when valid), its status. */
export type BatchStatus = "ok" | "not_found" | "invalid" | "unavailable";

/** The input of a batch: the CPFs in input order, null where an item is not a valid CPF. */
export interface BatchInput {
	cpfs: (string | null)[];
	/** the item as given, for an invalid line's `cpf` (a string, cut short; never echoed when not a string) */
	given: (string | null)[];
	tooMany: boolean;
}

/** A batch item: a CPF string, or an object with one (`{"cpf": …}`). */
function cpfOfItem(item: unknown): unknown {
	return item && typeof item === "object" && !Array.isArray(item) ? (item as { cpf?: unknown }).cpf : item;
}

function add(input: BatchInput, item: unknown): void {
	const raw = cpfOfItem(item);
	input.cpfs.push(normalizeCpf(raw));
	input.given.push(typeof raw === "string" ? raw.slice(0, 20) : null);
}

/**
 * The CPFs of a batch body: a JSON array (of CPFs or `{"cpf": …}`), or NDJSON text (one per line,
 * a bare CPF with or without quotes, or an object). The count is checked as the items are read: the
 * one past `max` stops the reading and sets `tooMany`. A line that is not JSON is an invalid item.
 */
export function parseBatch(body: unknown, max = BATCH_MAX_CPFS): BatchInput {
	const input: BatchInput = { cpfs: [], given: [], tooMany: false };
	if (Array.isArray(body)) {
		if (body.length > max) return { ...input, tooMany: true };
		for (const item of body) add(input, item);
		return input;
	}
	if (typeof body !== "string") return input;
	for (let start = 0; start < body.length;) {
		let end = body.indexOf("\n", start);
		if (end < 0) end = body.length;
		const line = body.slice(start, end).trim();
		start = end + 1;
		if (line === "") continue;
		if (input.cpfs.length === max) return { ...input, tooMany: true };
		let item: unknown = line;
		if (line.startsWith("{") || line.startsWith("\"")) {
			try {
				item = JSON.parse(line);
			} catch {
				item = null;
			}
		}
		add(input, item);
	}
	return input;
}

/** The chunks of a list, in order. */
export function* chunks<T>(items: readonly T[], size = BATCH_CHUNK): Generator<{ start: number; items: T[] }> {
	for (let start = 0; start < items.length; start += size) yield { start, items: items.slice(start, start + size) };
}
