// A node of its own process for test/middlewares/liveness.middleware.test.ts, to be killed with SIGKILL:
// a broker on the real NATS (namespace from NAMESPACE) with LivenessMiddleware and one service.
import { ServiceBroker } from "moleculer";
import { config } from "../../config";
import { transporterOptions } from "../../config/nats";
import { LivenessMiddleware } from "../../middlewares/liveness.middleware";

const broker = new ServiceBroker({
	namespace: config.namespace, nodeID: process.env.NODE_ID, logger: false,
	transporter: transporterOptions(config) as never, heartbeatInterval: 1, heartbeatTimeout: 120,
	middlewares: [LivenessMiddleware()]
});
broker.createService({
	name: "echo",
	actions: {
		hello: () => "hello",
		// Answers only after a long while: a call to it is pending when the process is killed.
		slow: () => new Promise(resolve => setTimeout(() => resolve("late"), 60_000))
	}
});
broker.start().then(() => process.stdout.write("started\n"));
