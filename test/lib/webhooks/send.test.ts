import { describe, expect, it } from "vitest";
import { backoffMs, RETRY_FOR_MS } from "../../../lib/webhooks/send";

describe("retry backoff", () => {
	it("doubles from a second, jittered in its upper half, capped at an hour", () => {
		expect(backoffMs(0, 1000, () => 0)).toBe(500);
		expect(backoffMs(0, 1000, () => 1)).toBe(1000);
		expect(backoffMs(3, 1000, () => 0)).toBe(4000);
		expect(backoffMs(40, 1000, () => 1)).toBe(3600_000);
		expect(backoffMs(40, 1000, () => 0)).toBe(1800_000);
	});

	it("retries for a day before dead-lettering: about 30 attempts", () => {
		let waited = 0, attempts = 0;
		while (waited < RETRY_FOR_MS) waited += backoffMs(attempts++, 1000, () => 1);
		expect(attempts).toBeGreaterThan(20);
		expect(attempts).toBeLessThan(40);
	});
});
