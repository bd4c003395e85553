/** Largest amount accepted: R$ 100 billion, far inside Number's exact-integer range in cents. */
export const MAX_CENTS = 10_000_000_000_000;

/** A JSON number with at most two decimals → integer cents; null if negative, not finite or finer than a cent. */
export function toCents(value: unknown): number | null {
	if (typeof value !== "number" || !Number.isFinite(value) || value < 0) return null;
	const cents = Math.round(value * 100);
	// 0.1 * 100 is 10.000000000000002: tolerate binary noise, refuse a real third decimal.
	if (Math.abs(cents - value * 100) > 1e-6 || cents > MAX_CENTS) return null;
	return cents;
}

/** Integer cents (number, or the string pg returns for BIGINT) → a number with two decimals at most. */
export function fromCents(cents: number | string | bigint): number {
	return Number(cents) / 100;
}
