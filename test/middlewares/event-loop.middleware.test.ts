import { ServiceBroker } from "moleculer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EVENT_LOOP_DELAY_MAX, EVENT_LOOP_DELAY_P99, EventLoopMiddleware } from "../../middlewares/event-loop.middleware";

let broker: ServiceBroker;
beforeAll(async () => {
	broker = new ServiceBroker({ transporter: null, logger: false, metrics: { enabled: true }, middlewares: [EventLoopMiddleware()] });
	await broker.start();
});
afterAll(async () => {
	await broker?.stop();
});

const gauge = (name: string) => broker.metrics.getMetric(name)?.get()?.value as number | undefined;

describe("EventLoopMiddleware", () => {
	it("shows a stall of the event loop as the last second's longest delay, then forgets it", async () => {
		await new Promise(r => setTimeout(r, 1100));
		expect(gauge(EVENT_LOOP_DELAY_MAX)).toBeTypeOf("number");
		// Blocks this process's loop for 300 ms.
		const until = Date.now() + 300;
		while (Date.now() < until) { /* busy */ }
		await new Promise(r => setTimeout(r, 1100));
		expect(gauge(EVENT_LOOP_DELAY_MAX)).toBeGreaterThanOrEqual(250);
		expect(gauge(EVENT_LOOP_DELAY_P99)).toBeGreaterThan(0);
		// A window later the stall is gone from the gauge (it says the last second, not the worst ever).
		await new Promise(r => setTimeout(r, 2100));
		expect(gauge(EVENT_LOOP_DELAY_MAX)).toBeLessThan(250);
	});
});
