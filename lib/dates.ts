const BR = /^(\d{2})\/(\d{2})\/(\d{4})$/;
const ISO = /^(\d{4})-(\d{2})-(\d{2})$/;

/** Parses `DD/MM/YYYY` or `YYYY-MM-DD` into ISO `YYYY-MM-DD`; null for malformed or impossible dates. */
export function parseDate(input: unknown): string | null {
	if (typeof input !== "string") return null;
	let day: number, month: number, year: number;
	let m = BR.exec(input);
	if (m) [day, month, year] = [Number(m[1]), Number(m[2]), Number(m[3])];
	else if ((m = ISO.exec(input))) [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
	else return null;
	if (year < 1900 || year > 2199) return null;
	// Date.UTC rolls 31/02 over into March; a round trip catches impossible dates.
	const d = new Date(Date.UTC(year, month - 1, day));
	if (d.getUTCFullYear() !== year || d.getUTCMonth() !== month - 1 || d.getUTCDate() !== day) return null;
	return d.toISOString().slice(0, 10);
}

/** ISO `YYYY-MM-DD` (or a Date) → `DD/MM/YYYY`, the seed's wire format. */
export function formatDate(value: string | Date): string;
export function formatDate(value: string | Date | null | undefined): string | null;
export function formatDate(value: string | Date | null | undefined): string | null {
	if (value == null) return null;
	const iso = value instanceof Date ? value.toISOString().slice(0, 10) : value.slice(0, 10);
	const [y, m, d] = iso.split("-");
	return `${d}/${m}/${y}`;
}

/** Today as ISO `YYYY-MM-DD` in UTC. */
export function todayIso(now: Date = new Date()): string {
	return now.toISOString().slice(0, 10);
}

/** Whole years from `fromIso` to `toIso` (both `YYYY-MM-DD`); 0 when `fromIso` is later. */
export function yearsBetween(fromIso: string, toIso: string): number {
	const [fy, fm, fd] = fromIso.split("-").map(Number);
	const [ty, tm, td] = toIso.split("-").map(Number);
	const years = ty - fy - (tm < fm || (tm === fm && td < fd) ? 1 : 0);
	return Math.max(0, years);
}
