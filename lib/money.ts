/** Largest amount accepted: R$ 100 billion, far inside Number's exact-integer range in cents. */
export const MAX_CENTS = 10_000_000_000_000;

/** Digits as JSON writes a number with at most two decimals (String() gives the shortest round-trip text). */
const TWO_DECIMALS = /^\d+(\.\d{1,2})?$/;

/** A JSON number with at most two decimals → integer cents; null if negative, not finite or finer than a cent. */
export function toCents(value: unknown): number | null {
	if (typeof value !== "number" || !Number.isFinite(value) || value < 0) return null;
	// Read the decimal text, not value * 100: 2.5e-42 rounds to 0 cents but is no amount a client meant.
	if (!TWO_DECIMALS.test(String(value))) return null;
	const cents = Math.round(value * 100);
	return cents > MAX_CENTS ? null : cents;
}

/** Integer cents (number, or the string pg returns for BIGINT) → a number with two decimals at most. */
export function fromCents(cents: number | string | bigint): number {
	return Number(cents) / 100;
}
