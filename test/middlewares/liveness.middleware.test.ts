import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { ServiceBroker } from "moleculer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { config } from "../../config";
import { transporterOptions } from "../../config/nats";
import { LivenessMiddleware } from "../../middlewares/liveness.middleware";
import { eventually } from "../support/mesh";

// LivenessMiddleware against the real NATS: a node in a process of its own is killed with SIGKILL (no
// goodbye). The heartbeat timeout is set to two minutes, so only the liveness probes can drop it early.
const namespace = `liveness-${randomBytes(4).toString("hex")}`;
const childID = `echo-${namespace}`;
let child: ChildProcess;
const broker = new ServiceBroker({
	namespace, nodeID: `observer-${namespace}`, logger: false,
	transporter: transporterOptions({ ...config, namespace }) as never,
	heartbeatInterval: 1, heartbeatTimeout: 120, requestTimeout: 90_000,
	middlewares: [LivenessMiddleware({ intervalMs: 500, graceMs: 1000 })]
});

beforeAll(async () => {
	await broker.start();
	child = spawn(process.execPath, ["--import", "tsx", "test/support/liveness-node.ts"], { env: { ...process.env, NAMESPACE: namespace, NODE_ID: childID }, stdio: ["ignore", "pipe", "inherit"] });
	await eventually(async () => broker.registry.nodes.get(childID)?.available === true && broker.registry.hasService("echo", childID), ok => ok, 30_000, 200);
}, 60_000);
afterAll(async () => {
	if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
	await broker.stop();
});

describe("LivenessMiddleware", () => {
	it("leaves a live node alone while probing it", async () => {
		expect(await broker.call("echo.hello")).toBe("hello");
		// Several probe rounds past the grace period: a node that answers is never dropped.
		await new Promise(r => setTimeout(r, 3000));
		expect(broker.registry.nodes.get(childID)?.available).toBe(true);
		expect(await broker.call("echo.hello")).toBe("hello");
	});

	it("drops a node killed with SIGKILL long before the heartbeat timeout, and rejects its pending call as retryable", async () => {
		const pending = broker.call("echo.slow").then(() => null, (err: { name: string; retryable?: boolean }) => err);
		await new Promise(r => setTimeout(r, 300)); // the request is on its way
		const killedAt = Date.now();
		child.kill("SIGKILL");
		const gone = await eventually(async () => broker.registry.nodes.get(childID)?.available, available => available === false, 20_000, 100);
		expect(gone).toBe(false);
		const err = await pending;
		expect(err?.name).toBe("RequestRejectedError");
		expect(err?.retryable).toBe(true);
		// Within the 20 s looked for above, far from the 120 s heartbeat timeout and the 90 s request timeout.
		expect(Date.now() - killedAt).toBeLessThan(20_000);
		expect(broker.registry.hasService("echo", childID)).toBe(false);
	}, 40_000);
});
