// Group base-c in a process of its own, with only that group's settings (`engines.sh env test --group
// base-c`: Elasticsearch's URL, no pseudonym key), for test/services/activity-front.test.ts: what an
// attacker who takes a base-c container holds and sees. Records, one JSON line each in the file given,
// every call that reaches its actions (params and meta, before validation) and every message its
// channels deliver, so the test can look for a CPF in them.
//   tsx test/support/base-c-node.ts '<namespace>' '<record file>'
import { appendFileSync } from "node:fs";
import { type Context, type Middleware, ServiceBroker, type ServiceSchema } from "moleculer";
import brokerConfig from "../../moleculer.config";
import { config } from "../../config";
import TransactionWriterService from "../../services/transaction-writer.service";
import ActivityService from "../../services/activity.service";

const [namespace, recordFile] = process.argv.slice(2);
const record = (entry: object) => appendFileSync(recordFile, `${JSON.stringify(entry)}\n`);

/** Every call to a local action, as it arrives. */
const Recorder: Middleware = {
	name: "Recorder",
	localAction(handler: (ctx: Context) => Promise<unknown>, action: { name?: string }) {
		return (ctx: Context) => {
			record({ kind: "call", action: action.name, params: ctx.params, meta: ctx.meta });
			return handler(ctx);
		};
	}
};

/** The schema with each channel's handler recording the messages it is given. */
function recordingChannels(schema: ServiceSchema): ServiceSchema {
	const channels = Object.fromEntries(Object.entries((schema as any).channels ?? {}).map(([name, spec]: [string, any]) => [name, {
		...spec,
		handler(this: unknown, batch: { data: unknown }[]) {
			record({ kind: "delivery", channel: name, data: batch.map(d => d.data) });
			return spec.handler.call(this, batch);
		}
	}]));
	return { ...schema, channels } as ServiceSchema;
}

const broker = new ServiceBroker({
	...brokerConfig, namespace, nodeID: `base-c-node-${process.pid}`, logger: false,
	// Outermost, so that it sees a call before validation and the zero-trust checks.
	middlewares: [...(brokerConfig.middlewares ?? []), Recorder]
});
for (const schema of [TransactionWriterService, ActivityService]) broker.createService(recordingChannels(schema));
broker.start().then(() => process.stdout.write(`${JSON.stringify({ started: true, pseudonymKey: config.pseudonymKey !== undefined, elasticsearch: config.elasticsearchUrl !== undefined })}\n`), err => {
	process.stderr.write(`base-c-node: ${err?.stack ?? err}\n`);
	process.exit(2);
});
process.on("SIGTERM", () => void broker.stop().finally(() => process.exit(0)));
