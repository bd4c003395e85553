// Following the primary of a PostgreSQL pair (issue 18, docs/deploy.md "PostgreSQL pair").
//
// The settings name the pair as libpq does: postgres://user:pw@host1:5432,host2:5432/db?target_session_attrs=read-write.
// node-postgres and Sequelize take one host only, so the libpq rule is applied here, once per new pooled
// connection, in Sequelize's own connection hooks: the hosts are tried in turn (the one found last first) and
// the first that accepts a connection and takes writes (transaction_read_only off, libpq's read-write check)
// is the one connected to. When none is, the connection fails with SQLSTATE 08001 (a connection error: 503 +
// Retry-After, and the next connection tries the list again). A write that still reaches a standby (a
// switch-over between the check and the statement) fails with 25006, also mapped to a 503.
import { Client } from "pg";
import type { Options } from "sequelize";

export interface PostgresHost { host: string; port: number }

export interface PostgresTarget {
	/** The URL with the first host only, and without target_session_attrs: what Sequelize parses. */
	url: string;
	hosts: PostgresHost[];
	/** target_session_attrs=read-write (or primary): connect to the primary only. */
	primaryOnly: boolean;
}

/** Splits a libpq multi-host URL; a one-host URL comes back unchanged (primaryOnly as its parameter says). */
export function parsePostgresUrl(url: string): PostgresTarget {
	const m = /^(postgres(?:ql)?:\/\/)([^/?#]*)(.*)$/.exec(url);
	if (!m) throw new Error("not a postgres:// URL");
	const [, scheme, authority, rest] = m;
	const at = authority.lastIndexOf("@");
	const userinfo = at >= 0 ? authority.slice(0, at + 1) : "";
	const hosts = authority.slice(at + 1).split(",").map(parseHost);
	const [path, query = ""] = rest.split("?", 2);
	const params = new URLSearchParams(query);
	const attrs = params.get("target_session_attrs") ?? "any";
	if (!["any", "read-write", "primary"].includes(attrs)) throw new Error(`target_session_attrs=${attrs} is not supported (any, read-write, primary)`);
	params.delete("target_session_attrs");
	const first = hosts[0];
	const host = first.host.includes(":") ? `[${first.host}]` : first.host;
	const search = params.toString();
	return { url: `${scheme}${userinfo}${host}:${first.port}${path}${search ? `?${search}` : ""}`, hosts, primaryOnly: attrs !== "any" };
}

function parseHost(text: string): PostgresHost {
	const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+))(?::(\d{1,5}))?$/.exec(text);
	if (!m) throw new Error(`'${text}' is not host[:port]`);
	return { host: m[1] ?? m[2], port: m[3] ? Number(m[3]) : 5432 };
}

/** The connection error of "no host of the list is a primary now": SQLSTATE 08001, so a 503. */
export class NoPrimaryError extends Error {
	override name = "NoPrimaryError";
	readonly code = "08001";
	constructor(tried: string[]) {
		super(`No PostgreSQL host is a primary accepting writes now (tried ${tried.length}: ${tried.join("; ")})`);
	}
}

/** What Sequelize passes to beforeConnect (its Config, writable), as far as used here. */
interface ConnectConfig { host?: string | null; port?: number | string | null; username?: string | null; password?: string | null; database?: string | null }

/** Whether host answers and takes writes (one short connection): libpq's read-write check, transaction_read_only off. */
async function isPrimary(h: PostgresHost, c: ConnectConfig, timeoutMs: number): Promise<boolean> {
	const client = new Client({ host: h.host, port: h.port, user: c.username ?? undefined, password: c.password ?? undefined, database: c.database ?? undefined, connectionTimeoutMillis: timeoutMs });
	client.on("error", () => undefined);
	try {
		await client.connect();
		// A standby is read-only; so is a node pg_auto_failover is promoting until the old primary is demoted.
		const { rows } = await client.query<{ ro: string }>("SELECT current_setting('transaction_read_only') AS ro");
		return rows[0]?.ro === "off";
	} finally {
		await client.end().catch(() => undefined);
	}
}

/**
 * Sequelize options that connect every pooled connection to the target's primary; none for a single host
 * without target_session_attrs (Sequelize connects to it as before).
 */
export function followPrimary(target: PostgresTarget, timeoutMs = 2000): Pick<Options, "hooks"> {
	if (target.hosts.length === 1 && !target.primaryOnly) return {};
	/** The host found last: tried first next time (one check per new connection while the primary stays). */
	let last = 0;
	return {
		hooks: {
			async beforeConnect(config: ConnectConfig) {
				const tried: string[] = [];
				const order = target.hosts.map((_, i) => (last + i) % target.hosts.length);
				for (const i of order) {
					const h = target.hosts[i];
					const ok = await isPrimary(h, config, timeoutMs).catch((err: Error & { code?: string }) => {
						tried.push(`${h.host}:${h.port} ${err.code ?? err.name}`);
						return null;
					});
					if (ok || (ok === false && !target.primaryOnly)) {
						last = i;
						config.host = h.host;
						config.port = h.port;
						return;
					}
					if (ok === false) tried.push(`${h.host}:${h.port} standby`);
				}
				throw new NoPrimaryError(tried);
			}
		}
	};
}
