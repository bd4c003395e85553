// The operators' REPL: `npm run repl` (docs/repl.md). Joins the running mesh over NATS as a node of its
// own, with no services, and starts moleculer-repl with the operator commands of broker/repl-commands.ts.
// When stdin is not a terminal it runs the lines it reads, one after the other, then exits
// (non-zero when a command failed): `echo audit:verify | npm run --silent repl`.
import { execFileSync } from "node:child_process";
import { resolve } from "node:path";
import { PassThrough, Writable } from "node:stream";
import { createInterface } from "node:readline";
import nodeRepl from "node:repl";
import { type BrokerOptions, ServiceBroker } from "moleculer";

const DELIMITER = "credit-mesh $";

/**
 * Without TRANSPORTER or TRANSPORTER_FILE, the development settings of `npm start` as the operators'
 * group (`bash scripts/engines.sh env dev --group operators`); anything already in the environment wins.
 */
function loadDevEnv(): void {
	if (process.env.TRANSPORTER || process.env.TRANSPORTER_FILE) return;
	const exports = execFileSync("bash", [resolve(__dirname, "engines.sh"), "env", "dev", "--group", "operators"], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
	for (const line of exports.split("\n")) {
		const m = /^export ([A-Z_]+)=(.*)$/.exec(line.trim());
		if (m && process.env[m[1]] === undefined) process.env[m[1]] = m[2].replace(/^['"]|['"]$/g, "");
	}
	console.error("repl: using the development settings (bash scripts/engines.sh env dev --group operators)");
}

/**
 * moleculer-repl 0.8 always reads process.stdin, and with piped input it evaluates every line at
 * once and exits at end of input before they finish. So, off a terminal, its REPL server gets an
 * idle input instead, and we hand it the lines ourselves through its own evaluator, waiting for
 * each: the same commands, parsed the same way, as at the prompt.
 */
function startQuietRepl(broker: ServiceBroker): nodeRepl.REPLServer {
	const start = nodeRepl.start;
	const sink = new Writable({ write: (_chunk, _enc, done) => done() }); // the prompts
	nodeRepl.start = ((opts: nodeRepl.ReplOptions) => start({ ...opts, input: new PassThrough(), output: sink, terminal: false })) as typeof start;
	try {
		return broker.repl() as unknown as nodeRepl.REPLServer;
	} finally {
		nodeRepl.start = start;
	}
}

async function runLines(server: nodeRepl.REPLServer): Promise<void> {
	const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
	for await (const raw of lines) {
		const line = raw.trim();
		if (!line || line.startsWith("#")) continue;
		process.stdout.write(`${DELIMITER} ${line}\n`);
		await new Promise<void>(done => server.eval(line, server.context, "repl", () => done()));
	}
}

async function main(): Promise<void> {
	loadDevEnv();
	// Imported only now: config reads the environment once, when first loaded.
	const brokerConfig: BrokerOptions = (await import("../moleculer.config.js")).default;
	const { config } = await import("../config/index.js");
	const { createReplCommands, replNodeId } = await import("../broker/repl-commands.js");
	const { OperatorMiddleware, operatorId } = await import("../middlewares/operator.middleware.js");

	if (!config.transporter) {
		console.error("repl: no TRANSPORTER (or TRANSPORTER_FILE): the REPL joins a running mesh over NATS");
		process.exit(2);
	}
	const { commands, failures } = createReplCommands();
	const logger: any = brokerConfig.logger;
	const broker = new ServiceBroker({
		...brokerConfig,
		nodeID: replNodeId(),
		// Its calls are signed as the operators' group (a dev environment holds every group's key).
		metadata: { meshGroup: "operators" },
		// Warnings and errors only, unless LOG_LEVEL asks for more: the prompt is for the operator.
		logger: { ...logger, options: { ...logger.options, level: process.env.LOG_LEVEL ? config.logLevel : "warn" } },
		middlewares: [...(brokerConfig.middlewares ?? []), OperatorMiddleware()],
		replOptions: { delimiter: DELIMITER, customCommands: commands as any }
	});

	const joined = await Promise.race([
		broker.start().then(() => true),
		new Promise<false>(r => setTimeout(() => r(false), 15_000).unref())
	]);
	if (!joined) {
		console.error("repl: could not join the mesh over NATS within 15 s (is NATS up? bash scripts/engines.sh up)");
		process.exit(2);
	}
	console.error(`repl: node ${broker.nodeID} joined namespace '${broker.namespace}' as ${operatorId()}; type 'help' for the commands.`);

	if (process.stdin.isTTY) {
		broker.repl(); // exits the process on Ctrl+D or `quit`
		return;
	}
	await runLines(startQuietRepl(broker));
	await broker.stop();
	process.exit(failures() > 0 ? 1 : 0);
}

main().catch(err => {
	console.error(`repl: ${err?.message ?? err}`);
	process.exit(2);
});
