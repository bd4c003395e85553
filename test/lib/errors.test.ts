import { describe, expect, it } from "vitest";
import { isConnectionError } from "../../lib/errors";

/** The errors as the mongodb driver raises them (name, numeric server code, message). */
const mongoError = (code: number, message: string) => Object.assign(new Error(message), { name: "MongoError", code });

describe("isConnectionError", () => {
	it("takes a MongoDB-protocol server relaying its PostgreSQL storage being down for an outage (FerretDB, found by the fault test)", () => {
		expect(isConnectionError(mongoError(1, "[msg_find.go:344 handler.handleMaxTimeMSError] [query_iterator.go:92 postgresql.(*queryIterator).Next] FATAL: terminating connection due to administrator command (SQLSTATE 57P01)"))).toBe(true);
		expect(isConnectionError(mongoError(1, "[collection.go:109 postgresql.(*collection).Query] failed to connect to `user=credit_ml database=credit_ferret`: 127.0.0.1:5432 (127.0.0.1): server error: FATAL: the database system is shutting down (SQLSTATE 57P03)"))).toBe(true);
		expect(isConnectionError(mongoError(1, "failed to connect to `user=x database=y`: 127.0.0.1:5432 (127.0.0.1): dial error: dial tcp 127.0.0.1:5432: connect: connection refused"))).toBe(true);
	});

	it("takes MongoDB's own 'not serving now' codes for an outage", () => {
		for (const code of [91, 11600, 189, 10107, 13436, 6, 89]) expect(isConnectionError(mongoError(code, "x"))).toBe(true);
	});

	it("takes PostgreSQL's 'too many connections' (53300) for an outage: a 503, not a 500", () => {
		expect(isConnectionError(Object.assign(new Error("sorry, too many clients already"), { code: "53300" }))).toBe(true);
		expect(isConnectionError({ name: "SequelizeDatabaseError", original: { code: "53300" } })).toBe(true);
	});

	it("leaves other server errors alone: they stay 500s, not disguised as outages", () => {
		expect(isConnectionError(mongoError(1, "[handler.go:12] something unexpected"))).toBe(false);
		expect(isConnectionError(mongoError(2, "BadValue (SQLSTATE 57P01)"))).toBe(false);
		expect(isConnectionError(mongoError(11000, "E11000 duplicate key"))).toBe(false);
		expect(isConnectionError(new Error("boom"))).toBe(false);
	});
});
