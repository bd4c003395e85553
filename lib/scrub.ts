// A CPF written with or without punctuation, not part of a longer number.
const CPF_PATTERN = /(?<![\d.])\d{3}\.?\d{3}\.?\d{3}-?\d{2}(?![\d-])/g;
// Fields that hold direct identifiers anywhere in our payloads.
const PERSONAL_KEYS = new Set(["cpf", "nome", "endereco", "dataNascimento", "authorization", "apiKey"]);

export const REDACTED = "[redacted]";

/** Replaces anything shaped like a CPF. */
export function scrubText(text: string): string {
	return text.replace(CPF_PATTERN, REDACTED);
}

/** A deep copy with personal fields redacted and CPFs masked in every string. */
export function scrubValue(value: unknown, depth = 0): unknown {
	if (typeof value === "string") return scrubText(value);
	if (value === null || typeof value !== "object" || depth > 8) return value;
	if (value instanceof Error) {
		// The copy takes the error's own fields too (a driver's `code`, Moleculer's `data`…).
		const copy = new Error(scrubText(value.message)) as Error & Record<string, unknown>;
		copy.name = value.name;
		copy.stack = value.stack && scrubText(value.stack);
		for (const [k, v] of Object.entries(value)) copy[k] = PERSONAL_KEYS.has(k) ? REDACTED : scrubValue(v, depth + 1);
		return copy;
	}
	if (Array.isArray(value)) return value.map(v => scrubValue(v, depth + 1));
	const out: Record<string, unknown> = {};
	for (const [k, v] of Object.entries(value)) out[k] = PERSONAL_KEYS.has(k) ? REDACTED : scrubValue(v, depth + 1);
	return out;
}
