import { randomInt } from "node:crypto";

const FORMATTED = /^\d{3}\.\d{3}\.\d{3}-\d{2}$/;
const DIGITS = /^\d{11}$/;

function checkDigit(digits: string, length: number): number {
	let sum = 0;
	for (let i = 0; i < length; i++) sum += Number(digits[i]) * (length + 1 - i);
	const rest = (sum * 10) % 11;
	return rest === 10 ? 0 : rest;
}

/** Returns the 11 digits of a valid CPF, or null. Accepts `52998224725` and `529.982.247-25`. */
export function normalizeCpf(input: unknown): string | null {
	if (typeof input !== "string") return null;
	if (!DIGITS.test(input) && !FORMATTED.test(input)) return null;
	const digits = input.replace(/\D/g, "");
	// 000.000.000-00 … 999.999.999-99 pass the checksum but are not real CPFs.
	if (/^(\d)\1{10}$/.test(digits)) return null;
	if (checkDigit(digits, 9) !== Number(digits[9])) return null;
	if (checkDigit(digits, 10) !== Number(digits[10])) return null;
	return digits;
}

/** The 11 digits of a CPF whose first nine are `base`, with its two check digits (`529982247` → `52998224725`). */
export function withCheckDigits(base: string): string {
	const d1 = checkDigit(base, 9);
	return `${base}${d1}${checkDigit(base + d1, 10)}`;
}

/** A random valid CPF, for tests, benchmarks and the demo loader. */
export function randomCpf(): string {
	for (;;) {
		let base = "";
		for (let i = 0; i < 9; i++) base += String(randomInt(10));
		const cpf = withCheckDigits(base);
		if (normalizeCpf(cpf)) return cpf;
	}
}

/** `52998224725` → `529.982.247-25` */
export function formatCpf(digits: string): string {
	return digits.replace(/^(\d{3})(\d{3})(\d{3})(\d{2})$/, "$1.$2.$3-$4");
}
