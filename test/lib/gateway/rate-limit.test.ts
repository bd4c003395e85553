import { describe, expect, it } from "vitest";
import { RateLimiter } from "../../../lib/gateway/rate-limit";

/** A limiter on a clock the test moves. */
function limiterAt(start = 1_000_000) {
	const clock = { now: start };
	return { limiter: new RateLimiter(() => clock.now), advance: (ms: number) => void (clock.now += ms) };
}

describe("RateLimiter", () => {
	it("lets a key burst up to its rate, then says how many seconds to wait", () => {
		const { limiter } = limiterAt();
		expect([1, 2, 3].map(() => limiter.take("k", 3))).toEqual([0, 0, 0]);
		// 3 a minute: one token every 20 s.
		expect(limiter.take("k", 3)).toBe(20);
		expect(limiter.take("k", 3)).toBe(20);
	});

	it("refills at the rate: one request after a token's worth of time, not before", () => {
		const { limiter, advance } = limiterAt();
		for (let i = 0; i < 60; i++) limiter.take("k", 60);
		expect(limiter.take("k", 60)).toBe(1);
		advance(500);
		expect(limiter.take("k", 60)).toBe(1);
		advance(500);
		expect(limiter.take("k", 60)).toBe(0);
		expect(limiter.take("k", 60)).toBe(1);
	});

	it("never holds more than one minute's worth, however long the key was idle", () => {
		const { limiter, advance } = limiterAt();
		limiter.take("k", 5);
		advance(24 * 3600_000);
		expect(Array.from({ length: 6 }, () => limiter.take("k", 5))).toEqual([0, 0, 0, 0, 0, 12]);
	});

	it("keeps each key apart", () => {
		const { limiter } = limiterAt();
		limiter.take("a", 1);
		expect(limiter.take("a", 1)).toBe(60);
		expect(limiter.take("b", 1)).toBe(0);
	});

	it("asks for at least a second, rounded up, even at a high rate", () => {
		const { limiter } = limiterAt();
		for (let i = 0; i < 6000; i++) limiter.take("k", 6000);
		expect(limiter.take("k", 6000)).toBe(1);
	});

	it("peeks without counting", () => {
		const { limiter, advance } = limiterAt();
		expect(limiter.peek("ip", 2)).toBe(0);
		limiter.take("ip", 2);
		expect(limiter.peek("ip", 2)).toBe(0);
		limiter.take("ip", 2);
		expect(limiter.peek("ip", 2)).toBe(30);
		expect(limiter.peek("ip", 2)).toBe(30);
		advance(30_000);
		expect(limiter.peek("ip", 2)).toBe(0);
	});

	it("gives a request back, never past the burst", () => {
		const { limiter } = limiterAt();
		limiter.take("ip", 1);
		expect(limiter.peek("ip", 1)).toBe(60);
		limiter.refund("ip", 1);
		expect(limiter.peek("ip", 1)).toBe(0);
		limiter.refund("ip", 1);
		limiter.take("ip", 1);
		expect(limiter.take("ip", 1)).toBe(60);
	});

	it("keeps at most maxIds buckets, dropping the least recently used", () => {
		const clock = { now: 0 };
		const limiter = new RateLimiter(() => clock.now, 3);
		for (const id of ["a", "b", "c"]) limiter.take(id, 1);
		limiter.take("a", 1); // a used again: b is now the oldest
		limiter.take("d", 1);
		expect(limiter.size).toBe(3);
		expect(limiter.peek("b", 1)).toBe(0); // dropped: starts full again
		expect(limiter.peek("a", 1)).toBe(60);
		expect(limiter.peek("c", 1)).toBe(60);
	});
});
