import { hostname } from "node:os";
import type { ServiceBroker } from "moleculer";
import { BOOTSTRAP_ADMIN_ID, SCOPES } from "../lib/scopes";

/**
 * The operators' REPL (`npm run repl`, docs/repl.md): its identity on the mesh and its custom
 * commands, in the shape moleculer-repl 0.8 registers (`broker.options.replOptions.customCommands`).
 * scripts/repl.ts runs these same objects interactively and, through moleculer-repl's own
 * evaluator, line by line when stdin is not a terminal.
 */

/** The REPL's node id: `repl-<host>-<pid>` (NODE_ID is left to the service processes). */
export function replNodeId(): string {
	return `repl-${hostname()}-${process.pid}`.replace(/[^A-Za-z0-9._-]/g, "-");
}

/** What moleculer-repl hands every custom command besides the broker. */
export interface ReplHelpers {
	table: (rows: unknown[][], config?: Record<string, unknown>) => string;
	kleur: any;
	getBorderCharacters: (name: string) => Record<string, string>;
}

export interface ReplCommand {
	command: string;
	description: string;
	options?: { option: string; description: string }[];
	/** Called by moleculer-repl with the commander command before the action (`this` is its parser). */
	parse: (this: unknown, cmd: any) => void;
	action: (broker: ServiceBroker, args: any, helpers: ReplHelpers) => Promise<void>;
}

export interface ReplCommands {
	commands: ReplCommand[];
	/** How many commands failed so far (a refused call, a broken audit chain, a base down). */
	failures(): number;
}

/** The commander arguments by name, plus `options` (commander's option values). */
function parseArgs(this: unknown, cmd: any): void {
	const params: Record<string, unknown> = { options: { ...cmd.opts() } };
	cmd.registeredArguments.forEach((arg: any, i: number) => (params[arg.name()] = cmd.processedArgs[i]));
	cmd.params = params;
}

const WAIT_FOR_SERVICE_MS = 10_000;

/** Waits for a service to be known on the mesh (right after the REPL joins, discovery takes a moment). */
async function service(broker: ServiceBroker, name: string, ms = WAIT_FOR_SERVICE_MS): Promise<void> {
	try {
		await broker.waitForServices(name, ms, 100);
	} catch {
		throw new Error(`no node of namespace '${broker.namespace}' runs '${name}' (is the mesh up? npm start)`);
	}
}

/** An error as one line (plus the fields of a validation error); never a stack. */
function describeError(err: any): string {
	const fields = Array.isArray(err?.data) ? err.data.filter((d: any) => d?.message).map((d: any) => `\n    ${d.message}`).join("") : "";
	if (!err?.code && (!err?.name || err.name === "Error")) return `${err?.message ?? String(err)}${fields}`;
	const code = err.code ? ` (${err.code})` : "";
	return `${err.name}${code}: ${err.message}${fields}`;
}

function write(line = ""): void {
	process.stdout.write(`${line}\n`);
}

/** Tables in the built-in commands' style. */
function render(h: ReplHelpers, header: string[], rows: unknown[][]): string {
	const border = Object.fromEntries(Object.entries(h.getBorderCharacters("honeywell")).map(([k, c]) => [k, h.kleur.gray(c)]));
	return h.table([header.map(c => h.kleur.bold(c)), ...rows], { border, drawHorizontalLine: (i: number, n: number) => i <= 1 || i === n });
}

const day = (iso: string | null) => (iso ? iso.replace("T", " ").slice(0, 19) + "Z" : "—");

/**
 * What keys:reencrypt goes through, each by its service's `reencrypt` action (one batch a call, in key
 * order). Stopped half-way, it is simply run again: values already under the current key are only read.
 */
const REENCRYPTED = [
	{ service: "persons", what: "Base A persons" },
	{ service: "idempotency", what: "Base A stored Idempotency answers" },
	{ service: "profiles", what: "Base B profiles" }
] as const;

/** A position of keys:reencrypt as one opaque word: which table, and the cursor in it. */
function writePosition(at: number, after: unknown): string {
	return Buffer.from(JSON.stringify({ at, after: after ?? null })).toString("base64url");
}

function readPosition(word: string): { at: number; after: unknown } {
	try {
		const position = JSON.parse(Buffer.from(word, "base64url").toString());
		if (Number.isInteger(position?.at) && position.at >= 0 && position.at < REENCRYPTED.length) return position;
	} catch {
		// fall through
	}
	throw new Error("--resume takes the position a stopped keys:reencrypt printed");
}

/** One batch's answer: rows read and re-encrypted, those no key held opens, where the next batch starts, the total (first batch). */
interface ReencryptBatch {
	scanned: number;
	changed: number;
	unreadable: number;
	next: unknown;
	total?: number;
}

/** The custom commands; each counts its own failures, so a script can exit non-zero. */
export function createReplCommands(): ReplCommands {
	let failures = 0;

	/** Runs a command body; a failure is printed (in red) and counted instead of thrown at moleculer-repl. */
	const guarded = (name: string, body: (broker: ServiceBroker, args: any, h: ReplHelpers) => Promise<boolean | void>) =>
		async (broker: ServiceBroker, args: any, h: ReplHelpers): Promise<void> => {
			try {
				if ((await body(broker, args, h)) === false) failures++;
			} catch (err) {
				failures++;
				write(h.kleur.red().bold(`✖ ${name}: ${describeError(err)}`));
				if ((err as any)?.hint) write(h.kleur.yellow(`  ${(err as any).hint}`));
			}
		};

	const commands: ReplCommand[] = [
		{
			command: "keys:issue <name> <scopes...>",
			description: "Create an API consumer (consumers.create) and print its key, shown this once",
			options: [{ option: "-r, --rate <perMinute>", description: "requests per minute (default RATE_LIMIT_PER_MINUTE)" }],
			parse: parseArgs,
			action: guarded("keys:issue", async (broker, args, h) => {
				// Scopes as separate words or comma-separated; consumers.create checks them.
				const scopes = (args.scopes as string[]).flatMap(s => s.split(",")).map(s => s.trim()).filter(Boolean);
				const params: Record<string, unknown> = { name: args.name, scopes };
				if (args.options.rate !== undefined) params.rateLimit = Number(args.options.rate);
				await service(broker, "consumers");
				let consumer: any;
				try {
					consumer = await broker.call("consumers.create", params);
				} catch (err: any) {
					if (err?.code === 422 && JSON.stringify(err.data ?? "").includes("scopes")) err.hint = `scopes are: ${SCOPES.join(" ")}`;
					throw err;
				}
				write(h.kleur.green().bold(`✔ Consumer '${consumer.name}' created`));
				write(`  id:      ${consumer.id}`);
				write(`  scopes:  ${consumer.scopes.join(" ")}`);
				write(`  rate:    ${consumer.rateLimit}/min`);
				write(`  key:     ${consumer.key}`);
				write(h.kleur.yellow().bold("⚠ Store this key now (hand it over through a secret store): it is shown only this once; only its hash is kept."));
			})
		},
		{
			command: "keys:revoke <id>",
			description: "Revoke an API consumer's key (consumers.revoke); every gateway drops it at once",
			parse: parseArgs,
			action: guarded("keys:revoke", async (broker, args, h) => {
				await service(broker, "consumers");
				await broker.call("consumers.revoke", { id: args.id });
				write(h.kleur.green().bold(`✔ Consumer ${args.id} revoked: its key now gets 401.`));
				if (args.id === BOOTSTRAP_ADMIN_ID) {
					write(h.kleur.yellow("⚠ This is the bootstrap admin: it comes back at the next start of 'consumers' while ADMIN_API_KEY is set. Rotate ADMIN_API_KEY instead."));
				}
			})
		},
		{
			command: "keys:list",
			description: "List API consumers (consumers.list): id, name, scopes, rate, created, revoked",
			options: [{ option: "-a, --active", description: "only consumers whose key is not revoked" }],
			parse: parseArgs,
			action: guarded("keys:list", async (broker, args, h) => {
				await service(broker, "consumers");
				const all: any[] = await broker.call("consumers.list", {});
				const shown = args.options.active ? all.filter(c => !c.revokedAt) : all;
				const rows = shown.map(c => [
					c.id, c.name, c.scopes.length === SCOPES.length ? "all" : c.scopes.join("\n"), `${c.rateLimit}/min`, day(c.createdAt),
					c.revokedAt ? h.kleur.red(day(c.revokedAt)) : h.kleur.green("—")
				]);
				write(render(h, ["ID", "Name", "Scopes", "Rate", "Created", "Revoked"], rows));
				write(`${shown.length} consumer(s), ${all.filter(c => !c.revokedAt).length} active of ${all.length}.`);
			})
		},
		{
			command: "audit:verify",
			description: "Check the audit log's keyed chain and signed checkpoints (audit.verify): ok, or what is broken",
			options: [{ option: "-f, --full", description: "every row and checkpoint, not only what follows the last good checkpoint" }],
			parse: parseArgs,
			action: guarded("audit:verify", async (broker, args, h) => {
				await service(broker, "audit");
				const result: any = await broker.call("audit.verify", { full: args.options?.full === true });
				if (result.ok) {
					write(h.kleur.green().bold(`✔ Audit chain ok: ${result.rows} rows, head seq ${result.head}.`));
					return true;
				}
				write(h.kleur.red().bold(`✖ Audit chain BROKEN: ${result.rows} rows, head seq ${result.head}; first broken rows:`));
				write(render(h, ["Seq", "Reason"], result.broken.map((b: any) => [b.seq, b.reason])));
				return false;
			})
		},
		{
			command: "keys:reencrypt",
			description: "Re-encrypt every encrypted field of Bases A and B and the stored Idempotency answers under the current PII key, in batches, while the mesh serves",
			options: [
				{ option: "-b, --batch <rows>", description: "rows per batch (default 500)" },
				{ option: "-r, --resume <position>", description: "go on from where a stopped run said (its last line)" }
			],
			parse: parseArgs,
			action: guarded("keys:reencrypt", async (broker, args, h) => {
				const limit = args.options.batch === undefined ? 500 : Number(args.options.batch);
				const resume = args.options.resume === undefined ? null : readPosition(args.options.resume);
				let unreadable = 0;
				for (const [at, { service: name, what }] of REENCRYPTED.entries()) {
					if (resume && at < resume.at) continue;
					await service(broker, name);
					let after: unknown = resume?.at === at ? resume.after : undefined;
					let total = 0;
					let scanned = 0;
					let changed = 0;
					do {
						let batch: ReencryptBatch;
						try {
							batch = await broker.call(`${name}.reencrypt`, { ...(after == null ? {} : { after }), limit }, { timeout: 120_000 });
						} catch (err) {
							// Where to go on from: the batches before this one are done.
							(err as { hint?: string }).hint = `go on from here later with: keys:reencrypt --resume ${writePosition(at, after)}`;
							throw err;
						}
						total = batch.total ?? total;
						scanned += batch.scanned;
						changed += batch.changed;
						unreadable += batch.unreadable;
						after = batch.next;
						write(`  ${what}: ${scanned}/${Math.max(total, scanned)} read, ${changed} re-encrypted${batch.unreadable ? h.kleur.red(`, ${batch.unreadable} unreadable`) : ""}`);
					} while (after != null);
				}
				if (unreadable > 0) {
					write(h.kleur.red().bold(`✖ ${unreadable} value(s) could not be opened with any key held: left as they are; keep the old keys until they are dealt with.`));
					return false;
				}
				write(h.kleur.green().bold("✔ Every encrypted field is under the current key: the older keys may now be removed from PII_KEYS."));
			})
		},
		{
			command: "webhooks:dead",
			description: "List webhook deliveries dead-lettered after 24 h of retries (webhook-deliveries.deadLetters)",
			parse: parseArgs,
			action: guarded("webhooks:dead", async (broker, _args, h) => {
				await service(broker, "webhook-deliveries");
				const dead: any[] = await broker.call("webhook-deliveries.deadLetters", {});
				write(render(h, ["ID", "Consumer", "Event", "Type", "At", "Attempts", "Last error"], dead.map(d => [
					d.id, d.consumerId, d.eventId, d.eventType, day(d.eventAt), d.attempts, d.lastError ?? `HTTP ${d.lastStatus}`
				])));
				write(`${dead.length} dead letter(s); send one again with webhooks:replay <id>.`);
			})
		},
		{
			command: "webhooks:replay <id>",
			description: "Send a dead-lettered webhook delivery again (webhook-deliveries.replayDead)",
			parse: parseArgs,
			action: guarded("webhooks:replay", async (broker, args, h) => {
				await service(broker, "webhook-deliveries");
				await broker.call("webhook-deliveries.replayDead", { id: args.id });
				write(h.kleur.green(`Delivery ${args.id} is pending again.`));
			})
		},
		{
			command: "health",
			description: "Readiness of each base (audit.health, profiles.health, activity.health)",
			parse: parseArgs,
			action: guarded("health", async (broker, _args, h) => {
				const bases = [
					{ base: "A", engine: "PostgreSQL", action: "audit.health" },
					{ base: "B", engine: "MongoDB protocol", action: "profiles.health" },
					{ base: "C", engine: "Elasticsearch", action: "activity.health" }
				];
				const results = await Promise.all(bases.map(async b => {
					try {
						await service(broker, b.action.split(".")[0], 3_000);
						await broker.call(b.action, {}, { timeout: 5_000, retries: 0 });
						return { ...b, up: true, detail: "" };
					} catch (err: any) {
						return { ...b, up: false, detail: describeError(err) };
					}
				}));
				write(render(h, ["Base", "Engine", "Checked by", "Status", "Detail"], results.map(r => [
					r.base, r.engine, r.action, r.up ? h.kleur.green("up") : h.kleur.red().bold("DOWN"), r.detail
				])));
				return results.every(r => r.up);
			})
		}
	];

	return { commands, failures: () => failures };
}
