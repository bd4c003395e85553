/**
 * A token bucket per id (an API key, a client address): `perMinute` requests a minute on average,
 * bursts up to the same number. In memory per gateway replica, so N replicas allow up to N times the
 * rate: the per-address limit of failed authentications, and the consumers' limit while the shared one
 * (consumers.take, docs/rate-limits.md) cannot be reached. At most `maxIds` buckets are kept, the least recently used going first, so a flood of new ids
 * (addresses) costs bounded memory; a dropped bucket starts full again.
 */
export class RateLimiter {
	private readonly buckets = new Map<string, { tokens: number; at: number }>();

	constructor(private readonly now: () => number = Date.now, private readonly maxIds = 100_000) {}

	/** 0 when the request may go ahead (and it is counted), otherwise the seconds to wait. */
	take(id: string, perMinute: number): number {
		const bucket = this.refilled(id, perMinute);
		if (bucket.tokens >= 1) {
			bucket.tokens -= 1;
			return 0;
		}
		return this.waitOf(bucket, perMinute);
	}

	/** Like take, without counting: the seconds to wait before one more would be allowed (0: now). */
	peek(id: string, perMinute: number): number {
		const bucket = this.buckets.get(id);
		if (!bucket) return 0;
		const tokens = Math.min(perMinute, bucket.tokens + (this.now() - bucket.at) * (perMinute / 60_000));
		return tokens >= 1 ? 0 : this.waitOf({ tokens }, perMinute);
	}

	/** Gives back one request taken earlier (it turned out not to count, e.g. a good key). */
	refund(id: string, perMinute: number): void {
		const bucket = this.buckets.get(id);
		if (bucket) bucket.tokens = Math.min(perMinute, bucket.tokens + 1);
	}

	get size(): number {
		return this.buckets.size;
	}

	private refilled(id: string, perMinute: number): { tokens: number; at: number } {
		const now = this.now();
		const bucket = this.buckets.get(id) ?? { tokens: perMinute, at: now };
		bucket.tokens = Math.min(perMinute, bucket.tokens + (now - bucket.at) * (perMinute / 60_000));
		bucket.at = now;
		// Re-inserted: the Map's order is the order of last use.
		this.buckets.delete(id);
		this.buckets.set(id, bucket);
		while (this.buckets.size > this.maxIds) this.buckets.delete(this.buckets.keys().next().value as string);
		return bucket;
	}

	private waitOf(bucket: { tokens: number }, perMinute: number): number {
		return Math.max(1, Math.ceil((1 - bucket.tokens) / (perMinute / 60_000) / 1000));
	}
}

/** Seconds until a bucket of `perMinute` holding `tokens` has one: what Retry-After says (at least 1). */
export function secondsUntilToken(tokens: number, perMinute: number): number {
	return Math.max(1, Math.ceil((1 - tokens) / (perMinute / 60_000) / 1000));
}
