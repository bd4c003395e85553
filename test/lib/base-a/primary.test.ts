// lib/base-a/primary.ts: libpq's multi-host URL and its read-write rule, for Sequelize. The standby half
// (a host in recovery is passed over, a write on a standby is a 503) is in test/postgres-failover.test.ts,
// which has the pair; here the hosts are the test cluster and ports where nothing listens.
import { QueryTypes, Sequelize } from "sequelize";
import { describe, expect, it } from "vitest";
import { config, need } from "../../../config";
import { followPrimary, NoPrimaryError, parsePostgresUrl } from "../../../lib/base-a/primary";
import { isConnectionError } from "../../../lib/errors";
import { freePort } from "../../support/replicas";

describe("parsePostgresUrl", () => {
	it("splits libpq's host list and keeps the rest of the URL for the first host", () => {
		const t = parsePostgresUrl("postgres://app:s3cr.et@db-1:5433,db-2,[::1]:5434/credit?target_session_attrs=read-write&application_name=x");
		expect(t.hosts).toEqual([{ host: "db-1", port: 5433 }, { host: "db-2", port: 5432 }, { host: "::1", port: 5434 }]);
		expect(t.url).toBe("postgres://app:s3cr.et@db-1:5433/credit?application_name=x");
		expect(t.primaryOnly).toBe(true);
	});

	it("leaves a one-host URL as it is, and asks for no hook", () => {
		const t = parsePostgresUrl("postgresql://u:p@127.0.0.1:5432/credit");
		expect(t).toEqual({ url: "postgresql://u:p@127.0.0.1:5432/credit", hosts: [{ host: "127.0.0.1", port: 5432 }], primaryOnly: false });
		expect(followPrimary(t)).toEqual({});
	});

	it("refuses what it does not follow, naming it", () => {
		expect(() => parsePostgresUrl("postgres://u:p@a,b/db?target_session_attrs=standby")).toThrow(/target_session_attrs=standby/);
		expect(() => parsePostgresUrl("postgres://u:p@a:x/db")).toThrow(/'a:x' is not host\[:port\]/);
		expect(() => parsePostgresUrl("mysql://a/db")).toThrow(/postgres/);
	});
});

/** The test cluster's URL with `before` hosts (nothing listening) ahead of it. */
async function listWith(closed: number): Promise<string> {
	const single = new URL(need(config, "postgresUrl"));
	const dead = await Promise.all(Array.from({ length: closed }, () => freePort()));
	return `postgres://${single.username}:${single.password}@${dead.map(p => `127.0.0.1:${p}`).join(",")}${closed ? "," : ""}${single.host}${single.pathname}?target_session_attrs=read-write`;
}

async function withSequelize<T>(url: string, work: (s: Sequelize) => Promise<T>): Promise<T> {
	const target = parsePostgresUrl(url);
	const sequelize = new Sequelize(target.url, { ...followPrimary(target, 1000), logging: false, pool: { max: 2, min: 0, acquire: 4000 }, retry: { max: 0 } });
	try {
		return await work(sequelize);
	} finally {
		await sequelize.close();
	}
}

describe("followPrimary", () => {
	it("connects past hosts that refuse connections to the first one that is a primary", async () => {
		const [row] = await withSequelize(await listWith(2), s => s.query<{ port: number; recovery: boolean }>(
			"SELECT inet_server_port() AS port, pg_is_in_recovery() AS recovery", { type: QueryTypes.SELECT }));
		expect(row).toEqual({ port: Number(new URL(need(config, "postgresUrl")).port), recovery: false });
	});

	it("with no primary in the list, fails as a connection error (a 503 with Retry-After, not a 500)", async () => {
		const url = (await listWith(2)).replace(/,[^,/]+\/credit_test/, "/credit_test");
		const err = await withSequelize(url, s => s.query("SELECT 1")).catch((e: unknown) => e);
		expect(err).toBeInstanceOf(NoPrimaryError);
		expect(isConnectionError(err)).toBe(true);
		expect((err as Error).message).toMatch(/tried 2: 127\.0\.0\.1:\d+ ECONNREFUSED; 127\.0\.0\.1:\d+ ECONNREFUSED/);
	});

	it("takes a write that reached a standby (SQLSTATE 25006) for an outage: a retryable 503", () => {
		expect(isConnectionError({ name: "SequelizeDatabaseError", original: { code: "25006" } })).toBe(true);
	});
});
