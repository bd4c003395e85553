import { Errors } from "moleculer";

const { MoleculerError, MoleculerClientError } = Errors;

/**
 * A thrown value as this code reads it, whatever raised it (a driver, Moleculer, body-parser or ours):
 * every field may be missing, and the value may be no object at all.
 */
export type Thrown = {
	name?: string;
	message?: string;
	code?: string | number;
	type?: string;
	data?: unknown;
	/** The error a driver wrapped (Sequelize: `original`/`parent`; the standard `cause`). */
	original?: unknown;
	parent?: unknown;
	cause?: unknown;
} | null | undefined;

/** Seconds a client should wait before retrying when a base is down. */
export const RETRY_AFTER_SECONDS = 5;

/** A base (database) cannot be reached: 503 with Retry-After. Not retried inside the mesh: the client retries. */
export class BaseUnavailableError extends MoleculerError {
	constructor(base: string) {
		super(`Base ${base} is unavailable; try again later`, 503, "BASE_UNAVAILABLE", { base, retryAfter: RETRY_AFTER_SECONDS });
		this.retryable = false;
	}
}

/** A node has as many ML exports open as it keeps (services/ml-export.service.ts): 503, come back shortly. */
export class ExportsBusyError extends MoleculerError {
	constructor() {
		super("Too many ML exports are under way; try again later", 503, "EXPORTS_BUSY", { retryAfter: RETRY_AFTER_SECONDS });
		this.retryable = false;
	}
}

export class NotFoundError extends MoleculerClientError {
	constructor(what: string) {
		super(`${what} not found`, 404, "NOT_FOUND");
	}
}

export class ConflictError extends MoleculerClientError {
	constructor(message: string, type = "CONFLICT") {
		super(message, 409, type);
	}
}

/** 422 with the offending fields, the same shape as the validator's errors. */
export class InvalidFieldError extends MoleculerClientError {
	constructor(field: string, message: string, type = "invalid") {
		super("Parameters validation error!", 422, "VALIDATION_ERROR", [{ type, field, message }]);
	}
}

const CONNECTION_CODES: ReadonlySet<unknown> = new Set([
	"ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND", "EHOSTUNREACH",
	"57P01", "57P02", "57P03", // admin_shutdown, crash_shutdown, cannot_connect_now
	"53300", // too_many_connections: the server has no connection for us now
	"25006", // read_only_sql_transaction: a write reached a standby (a failover under way; lib/base-a/primary.ts)
	"08000", "08001", "08003", "08004", "08006" // connection_exception family
]);

/**
 * MongoDB server errors that mean "not serving now, try again": HostUnreachable, HostNotFound,
 * NetworkTimeout, ShutdownInProgress, PrimarySteppedDown, SocketException, NotWritablePrimary,
 * NotPrimaryNoSecondaryOk, NotPrimaryOrSecondary, InterruptedAtShutdown, InterruptedDueToReplStateChange.
 */
const MONGO_UNAVAILABLE_CODES = new Set([6, 7, 89, 91, 189, 9001, 10107, 13435, 13436, 11600, 11602]);

/**
 * A MongoDB-protocol server that stores into PostgreSQL (FerretDB) relays its storage being down as
 * an InternalError (code 1) carrying the PostgreSQL error: admin_shutdown, cannot_connect_now, the
 * connection_exception class, or a refused connection (docs/ferretdb.md).
 */
const RELAYED_STORAGE_DOWN = /\(SQLSTATE (57P0[1-3]|08[0-9A-Z]{3})\)|failed to connect to `|connect: connection refused/;

/** True for errors that mean "the database is not there", whatever driver layer raised them. */
export function isConnectionError(err: unknown): boolean {
	for (let e = err as Thrown, depth = 0; e && depth < 4; e = (e.original ?? e.parent ?? e.cause) as Thrown, depth++) {
		if (CONNECTION_CODES.has(e.code)) return true;
		if (/^Mongo/.test(e.name ?? "") && typeof e.code === "number") {
			if (MONGO_UNAVAILABLE_CODES.has(e.code)) return true;
			if (e.code === 1 && RELAYED_STORAGE_DOWN.test(e.message ?? "")) return true;
		}
		if (/^Sequelize(Connection|HostNotReachable|ConnectionRefused|ConnectionTimedOut|ConnectionAcquireTimeout)/.test(e.name ?? "")) return true;
		if (/^Mongo(Network|ServerSelection|Timeout|NotConnected|TopologyClosed|PoolClosed)/.test(e.name ?? "")) return true;
		if (/Connection terminated|connection timeout|Client has encountered a connection error|Topology (is )?closed|connection manager was closed/i.test(e.message ?? "")) return true;
	}
	return false;
}

/** A unique-key violation, from PostgreSQL (Sequelize) or MongoDB (code 11000). */
export function isDuplicateKeyError(err: unknown): boolean {
	const e = err as Thrown;
	return e?.name === "SequelizeUniqueConstraintError" || e?.code === 11000 || e?.code === "23505";
}

/** A call into the mesh without a valid caller token where the action needs one: 401. */
export class CallerTokenError extends MoleculerClientError {
	constructor(reason: string) {
		super(`The call carries no valid caller token (${reason})`, 401, "INVALID_CALLER_TOKEN");
	}
}

/** The caller may not do this: a missing scope, a group the action does not accept, someone else's record. */
export class ForbiddenError extends MoleculerClientError {
	constructor(message: string, type: string, data?: unknown) {
		super(message, 403, type, data);
	}
}

/** What became of a call, in the words the audit log and the report use; never the error's message (it may hold data). */
export type Outcome = "not_found" | "conflict" | "invalid" | "forbidden" | "unavailable" | "error";

/** Errors that mean "no healthy node can serve this now": the client should come back shortly. */
const NO_NODE_NOW: ReadonlySet<unknown> = new Set([
	"ServiceNotFoundError", "ServiceNotAvailableError", "RequestTimeoutError", "QueueIsFullError",
	"BrokerDisconnectedError", "RequestRejectedError", "RequestSkippedError"
]);

/**
 * The one classifier of errors: the gateway's HTTP status, the audit row's outcome and a report
 * part's status all come from it.
 */
export function classify(err: unknown): { outcome: Outcome; status: number } {
	const e = err as Thrown;
	if (NO_NODE_NOW.has(e?.name)) return { outcome: "unavailable", status: 503 };
	// A request larger, as the mesh encodes it, than NATS carries in one message: the client's to shrink.
	if (e?.code === "MAX_PAYLOAD_EXCEEDED") return { outcome: "invalid", status: 413 };
	const code = Number(e?.code);
	if (code === 404) return { outcome: "not_found", status: 404 };
	if (code === 409) return { outcome: "conflict", status: 409 };
	if (code === 400 || code === 413 || code === 415 || code === 422) return { outcome: "invalid", status: code };
	if (code === 401 || code === 403) return { outcome: "forbidden", status: code };
	if (code === 503) return { outcome: "unavailable", status: 503 };
	if (code >= 400 && code < 500) return { outcome: "invalid", status: code };
	return { outcome: "error", status: 500 };
}

/** How many items a request may carry (movements, a batch's CPFs), and how it says so past that: one 413 for the gateway and the action. */
export interface ItemLimit {
	max: number;
	/** The error's type, e.g. TOO_MANY_MOVEMENTS. */
	type: string;
	/** What is counted, for the message: `At most 10000 movements per request`. */
	what: string;
}

export function tooManyItems(limit: ItemLimit): Errors.MoleculerClientError {
	return new Errors.MoleculerClientError(`At most ${limit.max} ${limit.what}`, 413, limit.type, { max: limit.max });
}
