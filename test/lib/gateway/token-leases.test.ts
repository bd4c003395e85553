import { describe, expect, it } from "vitest";
import { type Grant, leaseSize, TokenLeases } from "../../../lib/gateway/token-leases";

/** A shared bucket holding `tokens`, counting the calls made to it. */
function sharedBucket(tokens: number, wait = 7) {
	const bucket = {
		tokens, calls: 0, asked: [] as number[],
		async take(count: number): Promise<Grant> {
			bucket.calls++;
			bucket.asked.push(count);
			await new Promise(r => setTimeout(r, 5));
			const granted = Math.min(count, bucket.tokens);
			bucket.tokens -= granted;
			return { granted, wait: granted > 0 ? 0 : wait };
		}
	};
	return bucket;
}

describe("TokenLeases", () => {
	it("sizes a lease to 0.1 s of the average rate, 1 to 100", () => {
		expect(leaseSize(4)).toBe(1);
		expect(leaseSize(600)).toBe(1);
		expect(leaseSize(6000)).toBe(10);
		expect(leaseSize(1_000_000)).toBe(100);
	});

	it("spends one call's lease on the next requests, and never allows more than the shared bucket granted", async () => {
		const leases = new TokenLeases();
		const bucket = sharedBucket(25);
		const waits: number[] = [];
		for (let i = 0; i < 30; i++) waits.push(await leases.take("c", 6000, n => bucket.take(n)));
		expect(waits.filter(w => w === 0)).toHaveLength(25);
		expect(waits.slice(25)).toEqual([7, 7, 7, 7, 7]);
		// 10 + 10 + 5, then one refused call per request.
		expect(bucket.asked.slice(0, 3)).toEqual([10, 10, 10]);
		expect(bucket.calls).toBe(3 + 5);
	});

	it("lets concurrent requests of one consumer share a single call", async () => {
		const leases = new TokenLeases();
		const bucket = sharedBucket(1000);
		const waits = await Promise.all(Array.from({ length: 10 }, () => leases.take("c", 6000, n => bucket.take(n))));
		expect(waits).toEqual(Array(10).fill(0));
		expect(bucket.calls).toBe(1);
	});

	it("refuses every request waiting on a refused call with its wait", async () => {
		const leases = new TokenLeases();
		const bucket = sharedBucket(0, 12);
		const waits = await Promise.all(Array.from({ length: 4 }, () => leases.take("c", 6000, n => bucket.take(n))));
		expect(waits).toEqual([12, 12, 12, 12]);
		expect(bucket.calls).toBe(1);
	});

	it("drops a lease past its time, and on clear", async () => {
		let now = 0;
		const leases = new TokenLeases(1000, 10, () => now);
		const bucket = sharedBucket(1000);
		await leases.take("c", 6000, n => bucket.take(n));
		now = 1001;
		await leases.take("c", 6000, n => bucket.take(n));
		expect(bucket.calls).toBe(2);
		leases.clear();
		await leases.take("c", 6000, n => bucket.take(n));
		expect(bucket.calls).toBe(3);
	});

	it("passes a failed call on to every request waiting on it (the gateway then uses its own limit)", async () => {
		const leases = new TokenLeases();
		const failing = () => Promise.reject(new Error("Base A out of reach"));
		await expect(Promise.all([leases.take("c", 6000, failing), leases.take("c", 6000, failing)])).rejects.toThrow("out of reach");
		const bucket = sharedBucket(5);
		expect(await leases.take("c", 6000, n => bucket.take(n))).toBe(0);
	});

	it("keeps at most maxIds consumers", async () => {
		const leases = new TokenLeases(1000, 3);
		const bucket = sharedBucket(1000);
		for (let i = 0; i < 10; i++) await leases.take(`c${i}`, 6000, n => bucket.take(n));
		expect(leases.size).toBe(3);
	});
});
