import { createHash } from "node:crypto";
import { Validators } from "moleculer";
import { VALIDATOR_OPTIONS } from "../validator";
import { toCents } from "../money";

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

export interface LineError {
	index: number;
	field?: string;
	type: string;
	message: string;
}

const checker = new (Validators.Fastest as any)(VALIDATOR_OPTIONS).validator.compile(MOVEMENT_SCHEMA);

/** The body of POST /transactions (one object, a JSON array, or NDJSON text) → its items, or a parse error. */
export function splitBody(body: unknown): { items: unknown[]; errors: LineError[] } {
	if (typeof body === "string") {
		const items: unknown[] = [];
		const errors: LineError[] = [];
		body.split("\n").forEach((line, index) => {
			if (line.trim() === "") return;
			try {
				items.push(JSON.parse(line));
			} catch {
				errors.push({ index, type: "json", message: `Line ${index + 1} is not valid JSON.` });
				items.push(undefined);
			}
		});
		return { items, errors };
	}
	if (Array.isArray(body)) return { items: body, errors: [] };
	if (body && typeof body === "object") return { items: [body], errors: [] };
	return { items: [], errors: [{ index: 0, type: "body", message: "Send a movement object, a JSON array of them, or NDJSON." }] };
}

/** Validates every item; returns the movements (normalised: CPF digits, ISO date) or every bad item by index. */
export function validateMovements(items: unknown[]): { movements: Movement[]; errors: LineError[] } {
	const movements: Movement[] = [];
	const errors: LineError[] = [];
	items.forEach((item, index) => {
		if (!item || typeof item !== "object" || Array.isArray(item)) {
			if (item !== undefined) errors.push({ index, type: "object", message: "Each movement must be a JSON object." });
			return;
		}
		const copy = { ...(item as object) } as Movement;
		const result = checker(copy);
		if (result === true) movements.push(copy);
		else for (const e of result as any[]) errors.push({ index, field: e.field, type: e.type, message: e.message });
	});
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
