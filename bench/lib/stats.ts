// Percentiles of measured values (latencies, durations).

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
	if (sorted.length === 0) return NaN;
	const rank = Math.ceil((p / 100) * sorted.length);
	return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

export function sortedCopy(values: number[]): Float64Array {
	return Float64Array.from(values).sort();
}

/** The median and the 99th percentile (nearest rank) of values in any order. */
export function percentiles(values: number[]): { p50: number; p99: number } {
	const sorted = sortedCopy(values);
	return { p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
}
