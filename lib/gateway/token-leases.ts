/**
 * Tokens of the shared rate limit (consumers.take in Base A, docs/rate-limits.md) taken a few at a time:
 * a gateway takes a lease of up to `leaseSize(perMinute)` tokens in one call and spends it on that
 * consumer's next requests, so a busy consumer costs one round trip per lease instead of one per request.
 * The tokens are taken from the shared bucket before they are spent, so all gateways together never
 * allow more than the limit; a lease unused after `ttlMs` is dropped (its tokens are lost, never
 * re-granted), which keeps one gateway from holding what another needs for longer than that.
 * Concurrent requests of one consumer wait for a single call rather than each making one.
 */

/** What one take from the shared bucket answered: tokens granted (0..asked), else the seconds to wait. */
export interface Grant { granted: number; wait: number }

interface Lease { tokens: number; until: number; pending?: Promise<Grant> }

/** Tokens per lease: what the consumer's average rate allows in 0.1 s, 1 to 100 (a key of 4 a minute: 1, as before). */
export function leaseSize(perMinute: number): number {
	return Math.max(1, Math.min(100, Math.floor(perMinute / 600)));
}

export class TokenLeases {
	private readonly leases = new Map<string, Lease>();

	constructor(private readonly ttlMs = 1000, private readonly maxIds = 10_000, private readonly now: () => number = Date.now) {}

	/** 0 when the consumer's request may go ahead (one token spent), else the seconds to wait. */
	async take(id: string, perMinute: number, takeShared: (count: number) => Promise<Grant>): Promise<number> {
		for (;;) {
			const lease = this.leases.get(id);
			if (lease && lease.tokens > 0 && lease.until > this.now()) {
				lease.tokens--;
				return 0;
			}
			if (lease?.pending) {
				const grant = await lease.pending;
				// Refused: every request that waited on the call is refused with its wait.
				if (grant.granted === 0) return grant.wait;
				continue;
			}
			const pending = takeShared(leaseSize(perMinute));
			const fresh: Lease = { tokens: 0, until: 0, pending };
			this.remember(id, fresh);
			let grant: Grant;
			try {
				grant = await pending;
			} finally {
				fresh.pending = undefined;
			}
			if (grant.granted === 0) return grant.wait;
			fresh.tokens = grant.granted - 1;
			fresh.until = this.now() + this.ttlMs;
			return 0;
		}
	}

	/** Drops every lease (a key revoked or changed: its next request asks the shared bucket again). */
	clear(): void {
		this.leases.clear();
	}

	get size(): number {
		return this.leases.size;
	}

	private remember(id: string, lease: Lease): void {
		this.leases.delete(id);
		this.leases.set(id, lease);
		// Bounded, least recently leased out first.
		while (this.leases.size > this.maxIds) this.leases.delete(this.leases.keys().next().value as string);
	}
}
