/**
 * A token bucket per API key: `perMinute` requests a minute on average, bursts up to the same
 * number. In memory per gateway replica, so N replicas allow up to N times the rate.
 */
export class RateLimiter {
	private readonly buckets = new Map<string, { tokens: number; at: number }>();

	constructor(private readonly now: () => number = Date.now) {}

	/** 0 when the request may go ahead, otherwise the seconds to wait. */
	take(id: string, perMinute: number): number {
		const now = this.now();
		const refillPerMs = perMinute / 60_000;
		const bucket = this.buckets.get(id) ?? { tokens: perMinute, at: now };
		bucket.tokens = Math.min(perMinute, bucket.tokens + (now - bucket.at) * refillPerMs);
		bucket.at = now;
		this.buckets.set(id, bucket);
		if (bucket.tokens >= 1) {
			bucket.tokens -= 1;
			return 0;
		}
		return Math.max(1, Math.ceil((1 - bucket.tokens) / refillPerMs / 1000));
	}
}
