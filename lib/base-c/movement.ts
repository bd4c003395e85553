import { createHash } from "node:crypto";
import type { ValidationError } from "fastest-validator";
import { Validators } from "moleculer";
import { type MoleculerFastestValidator, VALIDATOR_OPTIONS } from "../validator";
import { toCents } from "../money";
import { SUBJECT_PATTERN } from "./subject";
import { config } from "../../config";
import type { ItemLimit } from "../errors";

/** The 413 past INGEST_MAX_MOVEMENTS, from the gateway (while reading NDJSON) or the ingest action. */
export const MOVEMENT_LIMIT: ItemLimit = { max: config.ingestMaxMovements, type: "TOO_MANY_MOVEMENTS", what: "movements per request" };

/** `tipo` of a movement (documented in docs/base-c.md). */
export const MOVEMENT_TYPES = ["cartao", "pix", "boleto", "ted", "doc", "saque", "deposito", "debito_automatico", "transferencia"] as const;

export const MOVEMENT_SCHEMA = {
	$$strict: true,
	cpf: { type: "cpf" },
	tipo: { type: "enum", values: [...MOVEMENT_TYPES] },
	valor: { type: "money" },
	data: { type: "date" },
	id: { type: "string", pattern: /^[A-Za-z0-9._:-]{1,64}$/, optional: true }
};

/**
 * The filters and paging of GET /activity/:cpf/movements (fastest-validator), as activity-front takes them
 * from the API and activity.movements takes them from it (dates as ISO once converted).
 */
export const MOVEMENTS_QUERY = {
	from: { type: "date", optional: true },
	to: { type: "date", optional: true },
	tipo: { type: "enum", values: [...MOVEMENT_TYPES], optional: true },
	size: { type: "number", integer: true, min: 1, max: 500, convert: true, default: 50 },
	after: { type: "string", max: 200, optional: true, openapi: { description: "Opaque cursor: the `next` of the previous page, passed back unchanged" } }
} as const;

export interface Movement {
	cpf: string;
	tipo: string;
	valor: number;
	data: string; // ISO after validation
	id?: string;
}

/** What travels through JetStream and lands in Elasticsearch: no CPF, only its pseudonym. */
export interface MovementRecord {
	movement_id: string;
	subject: string;
	tipo: string;
	valor_cents: number;
	data: string;
}

/** What travels on the transactions channel, from base-c-front to base-c: a slice of one request's records. */
export interface MovementBatch {
	records: MovementRecord[];
}

const RECORD_FIELDS = ["movement_id", "subject", "tipo", "valor_cents", "data"];

/**
 * A movement record as base-c takes it from the channel: exactly its five fields, the subject shaped as a
 * pseudonym. Anything else (a record that carries a `cpf`, or a CPF as its subject) is never written.
 */
export function isMovementRecord(data: unknown): data is MovementRecord {
	if (!data || typeof data !== "object") return false;
	const r = data as Record<string, unknown>;
	return RECORD_FIELDS.every(k => k in r) && Object.keys(r).length === RECORD_FIELDS.length && typeof r.subject === "string" && SUBJECT_PATTERN.test(r.subject);
}

export interface LineError {
	index: number;
	field?: string;
	type: string;
	message: string;
}

const checker = (new Validators.Fastest(VALIDATOR_OPTIONS) as MoleculerFastestValidator).validator.compile(MOVEMENT_SCHEMA);

/** A refused batch names at most this many bad items: reading further could not change the answer. */
export const MAX_REPORTED_ERRORS = 100;

/** Items and bad lines of a body; `tooMany` when it holds more than the cap (read no further). */
export interface SplitBody {
	items: unknown[];
	errors: LineError[];
	tooMany: boolean;
}

/**
 * The body of POST /transactions (one object, a JSON array, or NDJSON text) → its items, or its bad
 * lines. NDJSON is read line by line and given up as soon as it holds more than `maxItems` movements
 * or MAX_REPORTED_ERRORS bad lines, so a body of millions of junk lines costs neither memory nor time.
 */
export function splitBody(body: unknown, maxItems: number): SplitBody {
	if (typeof body === "string") {
		const items: unknown[] = [];
		const errors: LineError[] = [];
		for (let start = 0, index = 0; start < body.length; index++) {
			let end = body.indexOf("\n", start);
			if (end < 0) end = body.length;
			const line = body.slice(start, end);
			start = end + 1;
			if (line.trim() === "") continue;
			if (items.length === maxItems) return { items, errors, tooMany: true };
			try {
				items.push(JSON.parse(line));
			} catch {
				errors.push({ index, type: "json", message: `Line ${index + 1} is not valid JSON.` });
				items.push(undefined);
				if (errors.length === MAX_REPORTED_ERRORS) break;
			}
		}
		return { items, errors, tooMany: false };
	}
	if (Array.isArray(body)) return { items: body, errors: [], tooMany: body.length > maxItems };
	if (body && typeof body === "object") return { items: [body], errors: [], tooMany: false };
	return { items: [], errors: [{ index: 0, type: "body", message: "Send a movement object, a JSON array of them, or NDJSON." }], tooMany: false };
}

/** Validates every item; returns the movements (normalised: CPF digits, ISO date) or the bad items by index (at most MAX_REPORTED_ERRORS). */
export function validateMovements(items: unknown[]): { movements: Movement[]; errors: LineError[] } {
	const movements: Movement[] = [];
	const errors: LineError[] = [];
	for (let index = 0; index < items.length && errors.length < MAX_REPORTED_ERRORS; index++) {
		const item = items[index];
		if (!item || typeof item !== "object" || Array.isArray(item)) {
			if (item !== undefined) errors.push({ index, type: "object", message: "Each movement must be a JSON object." });
			continue;
		}
		const copy = { ...(item as object) } as Movement;
		// A compiled check of ours is synchronous, and fastest-validator gives every error a message.
		const result = checker(copy);
		if (result === true) movements.push(copy);
		else for (const e of result as (ValidationError & { message: string })[]) errors.push({ index, field: e.field, type: e.type, message: e.message });
	}
	return { movements, errors };
}

/**
 * Movements → records with idempotent ids. With a client `id` the record id is derived from it; without,
 * from the content plus its occurrence in the batch, so the same batch sent twice gives the same ids
 * (counted once) while two identical movements inside one batch stay two.
 */
export function toRecords(movements: Movement[], subjectOf: (cpf: string) => string): MovementRecord[] {
	const seen = new Map<string, number>();
	return movements.map(m => {
		const subject = subjectOf(m.cpf);
		const valorCents = toCents(m.valor)!;
		let basis: string;
		if (m.id) basis = `id|${subject}|${m.id}`;
		else {
			const content = `content|${subject}|${m.tipo}|${valorCents}|${m.data}`;
			const n = (seen.get(content) ?? 0) + 1;
			seen.set(content, n);
			basis = `${content}|${n}`;
		}
		const movementId = createHash("sha256").update(basis).digest("base64url");
		return { movement_id: movementId, subject, tipo: m.tipo, valor_cents: valorCents, data: m.data };
	});
}
