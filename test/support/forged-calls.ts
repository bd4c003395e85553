// A node of one service group (its settings from `engines.sh env test --group NAME`, in the environment)
// joins a test mesh's namespace and makes the calls it is given, with whatever meta it is given:
// what an attacker holding that group's container could do. Prints one JSON line of outcomes.
//   tsx test/support/forged-calls.ts '<namespace>' '[{"action":"…","params":{},"meta":{}}]'
import { ServiceBroker } from "moleculer";
import brokerConfig from "../../moleculer.config";

interface ForgedCall { action: string; params?: object; meta?: object; waitFor?: string; nodeID?: string }

async function main(): Promise<void> {
	const [namespace, json] = process.argv.slice(2);
	const calls: ForgedCall[] = JSON.parse(json);
	const broker = new ServiceBroker({ ...brokerConfig, namespace, nodeID: `forger-${process.pid}`, logger: false });
	await broker.start();
	const outcomes = [];
	for (const c of calls) {
		await broker.waitForServices(c.waitFor ?? c.action.split(".")[0], 15_000).catch(() => undefined);
		try {
			const result = await broker.call(c.action, c.params ?? {}, { meta: c.meta ?? {}, retries: 0, timeout: 5000, nodeID: c.nodeID });
			outcomes.push({ action: c.action, ok: true, result });
		} catch (err: any) {
			outcomes.push({ action: c.action, ok: false, code: err?.code, type: err?.type, name: err?.name });
		}
	}
	await broker.stop();
	process.stdout.write(`${JSON.stringify(outcomes)}\n`);
}

main().catch(err => {
	process.stderr.write(`forged-calls: ${err?.stack ?? err}\n`);
	process.exit(2);
});
