import { readFileSync } from "node:fs";
import Validator from "fastest-validator";
import type { KeyObject } from "node:crypto";
import { type DataKey, parseDataKeys, parseGroupKeys } from "./keys";
import { parseAddressList } from "./addresses";
import type { Group } from "./groups";

/** A bad or missing setting; the message names the environment variable. */
export class ConfigError extends Error {
	override name = "ConfigError";
}

// Each setting NAME may come from the file NAME_FILE instead (a Docker Swarm secret); NAME wins if both are set.
const schema = {
	$$strict: false,
	NODE_ENV: { type: "enum", values: ["development", "test", "production"], default: "development" },
	NAMESPACE: { type: "string", pattern: /^[a-z0-9-]{1,40}$/, default: "credit-mesh" },
	NODE_ID: { type: "string", pattern: /^[A-Za-z0-9._-]{1,64}$/, optional: true },
	TRANSPORTER: { type: "string", pattern: /^nats:\/\//, optional: true },
	// PEM of the CA that signed the NATS server's certificate: with it, every NATS connection is TLS and checks the server.
	NATS_CA: { type: "string", pattern: /-----BEGIN CERTIFICATE-----/, optional: true },
	POSTGRES_URL: { type: "string", pattern: /^postgres(ql)?:\/\//, optional: true },
	POSTGRES_OWNER_URL: { type: "string", pattern: /^postgres(ql)?:\/\//, optional: true },
	MONGO_URL: { type: "string", pattern: /^mongodb(\+srv)?:\/\//, optional: true },
	ELASTICSEARCH_URL: { type: "string", pattern: /^https?:\/\//, optional: true },
	// Connections each Base A service (6 per base-a process) and each Base B service (3 per base-b process)
	// may hold: PostgreSQL's max_connections is sized to them (docs/deploy.md, "Connection budget").
	POSTGRES_POOL_MAX: { type: "number", integer: true, min: 1, max: 100, convert: true, default: 10 },
	MONGO_POOL_MAX: { type: "number", integer: true, min: 1, max: 100, convert: true, default: 10 },
	ES_INDEX_PREFIX: { type: "string", pattern: /^[a-z][a-z0-9-]{0,40}$/, default: "credit" },
	INGEST_MAX_MOVEMENTS: { type: "number", integer: true, min: 1, max: 100_000, convert: true, default: 10_000 },
	INGEST_BODY_LIMIT: { type: "string", pattern: /^\d+(kb|mb)$/, default: "8mb" },
	// Each stream's cap. JetStream reserves it up front against the server's storage, so a server shared by
	// many meshes (local engines, tests) needs a small one; engines.sh env sets 256 MiB.
	JETSTREAM_MAX_BYTES: { type: "number", integer: true, min: 1024 ** 2, max: 1024 ** 4, convert: true, default: 2 * 1024 ** 3 },
	// Copies of every JetStream stream (its durable consumers follow it): 3 on the stack's three-node cluster, 1 on one server (docs/deploy.md).
	JETSTREAM_REPLICAS: { type: "number", integer: true, min: 1, max: 5, convert: true, default: 1 },
	// Replicas of each Base C index (0 on one Elasticsearch node, 1 on the stack's three), and how many copies of a
	// shard must be active before a write goes ahead ("all", or a number up to replicas + 1): the indices' own settings.
	ES_REPLICAS: { type: "number", integer: true, min: 0, max: 5, convert: true, default: 0 },
	ES_WAIT_FOR_ACTIVE_SHARDS: { type: "string", pattern: /^(all|[1-6])$/, default: "1" },
	ADMIN_API_KEY: { type: "string", min: 32, max: 256, optional: true },
	PII_KEYS: { type: "string", min: 10, optional: true },
	BLIND_INDEX_KEY: { type: "string", pattern: /^[A-Za-z0-9+/]{43}=$/, optional: true },
	PSEUDONYM_KEY: { type: "string", pattern: /^[A-Za-z0-9+/]{43}=$/, optional: true },
	// The audit chain's HMAC keys (`id:base64[,id:base64…]`, the first current): held by base-a, never by the database (docs/audit.md).
	AUDIT_CHAIN_KEYS: { type: "string", min: 10, optional: true },
	// How often the audit service publishes a signed checkpoint of the log's head (and once more at shutdown).
	AUDIT_CHECKPOINT_SECONDS: { type: "number", integer: true, min: 1, max: 60, convert: true, default: 60 },
	// The mesh's signing keys (docs/security.md): this process's groups' private keys, every group's public key.
	MESH_KEYS: { type: "string", min: 10, optional: true },
	MESH_PUBLIC_KEYS: { type: "string", min: 10, optional: true },
	CALLER_TOKEN_SECONDS: { type: "number", integer: true, min: 10, max: 3600, convert: true, default: 120 },
	PORT: { type: "number", integer: true, min: 0, max: 65535, convert: true, default: 3000 },
	HOST: { type: "string", default: "127.0.0.1" },
	LOG_LEVEL: { type: "enum", values: ["fatal", "error", "warn", "info", "debug", "trace"], default: "info" },
	LOG_FORMAT: { type: "enum", values: ["json", "short", "full"], default: "json" },
	RATE_LIMIT_PER_MINUTE: { type: "number", integer: true, min: 1, convert: true, default: 600 },
	// Failed authentications a client address may make per minute (burst the same) before it gets 429 without its key being looked up.
	AUTH_FAILURES_PER_MINUTE: { type: "number", integer: true, min: 1, convert: true, default: 60 },
	// Addresses (CIDRs, comma-separated) of the proxy in front of the gateway: only a connection from one of them has its X-Forwarded-For believed.
	TRUSTED_PROXIES: { type: "string", pattern: /^[0-9A-Fa-f.:/, ]{2,500}$/, optional: true },
	BODY_LIMIT: { type: "string", pattern: /^\d+(kb|mb)$/, default: "256kb" },
	AUTH_CACHE_SECONDS: { type: "number", integer: true, min: 0, max: 3600, convert: true, default: 30 },
	REQUEST_TIMEOUT_MS: { type: "number", integer: true, min: 100, convert: true, default: 10_000 },
	// Every node of a namespace must use the same two: a node heard less often than the timeout is dropped.
	HEARTBEAT_INTERVAL: { type: "number", integer: true, min: 1, max: 60, convert: true, default: 2 },
	HEARTBEAT_TIMEOUT: { type: "number", integer: true, min: 3, max: 300, convert: true, default: 8 },
	SENTRY_DSN: { type: "string", pattern: /^https?:\/\//, optional: true },
	SENTRY_ENVIRONMENT: { type: "string", pattern: /^[A-Za-z0-9._-]{1,64}$/, optional: true },
	// A port of its own for this node's Prometheus metrics (the groups without the gateway; docs/deploy.md section 8); unset: none.
	METRICS_PORT: { type: "number", integer: true, min: 0, max: 65535, convert: true, optional: true },
	METRICS_HOST: { type: "string", default: "127.0.0.1" },
	// How often `audit` checks the whole hash chain for the audit-chain gauge (0: only when audit.verify is called).
	AUDIT_VERIFY_SECONDS: { type: "number", integer: true, min: 0, max: 7 * 86400, convert: true, default: 3600 },
	// Zipkin's span endpoint (http://zipkin:9411/api/v2/spans): tracing is exported there only when set.
	ZIPKIN_URL: { type: "string", pattern: /^https?:\/\//, optional: true },
	// Webhook endpoints on loopback/private addresses (and plain http outside production): local development and tests only.
	WEBHOOKS_ALLOW_PRIVATE: { type: "enum", values: ["true", "false"], default: "false" },
	WEBHOOKS_MONITORS_MAX: { type: "number", integer: true, min: 1, max: 10_000_000, convert: true, default: 10_000 }
} as const;

export interface Config {
	env: "development" | "test" | "production";
	namespace: string;
	nodeId?: string;
	transporter?: string;
	natsCa?: string;
	postgresUrl?: string;
	postgresOwnerUrl?: string;
	mongoUrl?: string;
	elasticsearchUrl?: string;
	postgresPoolMax: number;
	mongoPoolMax: number;
	esIndexPrefix: string;
	ingestMaxMovements: number;
	ingestBodyLimit: string;
	jetstreamMaxBytes: number;
	/** Copies of each JetStream stream (and of its durable consumers). */
	jetstreamReplicas: number;
	/** Replicas of each Base C index. */
	esReplicas: number;
	/** The active shard copies a write to Base C waits for ("all" or a count): index.write.wait_for_active_shards. */
	esWaitForActiveShards: string;
	adminApiKey?: string;
	piiKeys?: DataKey[];
	blindIndexKey?: Buffer;
	pseudonymKey?: Buffer;
	/** The audit chain's HMAC keys, the current one first. */
	auditChainKeys?: DataKey[];
	auditCheckpointSeconds: number;
	/** The private keys of the groups this process may act as (one in production). */
	meshKeys?: Map<Group, KeyObject>;
	/** Every group's public key: what a signed token is checked against. */
	meshPublicKeys?: Map<Group, KeyObject>;
	callerTokenSeconds: number;
	port: number;
	host: string;
	logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace";
	logFormat: "json" | "short" | "full";
	rateLimitPerMinute: number;
	authFailuresPerMinute: number;
	/** Where X-Forwarded-For is believed from (the stack's TLS edge), as config/addresses.ts reads it; empty: never. */
	trustedProxies: string;
	bodyLimit: string;
	authCacheSeconds: number;
	requestTimeoutMs: number;
	heartbeatInterval: number;
	heartbeatTimeout: number;
	/** Unexpected errors go to Sentry only when set. */
	sentryDsn?: string;
	sentryEnvironment: string;
	/** This node's own metrics port (none when unset; the gateway also serves /metrics on its port). */
	metricsPort?: number;
	metricsHost: string;
	auditVerifySeconds: number;
	/** Spans go to Zipkin only when set. */
	zipkinUrl?: string;
	/** Webhook endpoints may resolve to loopback, private or link-local addresses (development and tests only). */
	webhooksAllowPrivate: boolean;
	/** CPFs one consumer may monitor. */
	webhooksMonitorsMax: number;
}

const ENV_NAMES: Record<keyof Config, string> = {
	env: "NODE_ENV", namespace: "NAMESPACE", nodeId: "NODE_ID", transporter: "TRANSPORTER", natsCa: "NATS_CA",
	postgresUrl: "POSTGRES_URL", postgresOwnerUrl: "POSTGRES_OWNER_URL", mongoUrl: "MONGO_URL",
	elasticsearchUrl: "ELASTICSEARCH_URL", postgresPoolMax: "POSTGRES_POOL_MAX", mongoPoolMax: "MONGO_POOL_MAX", esIndexPrefix: "ES_INDEX_PREFIX", ingestMaxMovements: "INGEST_MAX_MOVEMENTS", ingestBodyLimit: "INGEST_BODY_LIMIT", jetstreamMaxBytes: "JETSTREAM_MAX_BYTES",
	jetstreamReplicas: "JETSTREAM_REPLICAS", esReplicas: "ES_REPLICAS", esWaitForActiveShards: "ES_WAIT_FOR_ACTIVE_SHARDS",
	adminApiKey: "ADMIN_API_KEY", piiKeys: "PII_KEYS",
	blindIndexKey: "BLIND_INDEX_KEY", pseudonymKey: "PSEUDONYM_KEY", auditChainKeys: "AUDIT_CHAIN_KEYS", auditCheckpointSeconds: "AUDIT_CHECKPOINT_SECONDS", meshKeys: "MESH_KEYS", meshPublicKeys: "MESH_PUBLIC_KEYS", callerTokenSeconds: "CALLER_TOKEN_SECONDS", port: "PORT", host: "HOST",
	logLevel: "LOG_LEVEL", logFormat: "LOG_FORMAT", rateLimitPerMinute: "RATE_LIMIT_PER_MINUTE", authFailuresPerMinute: "AUTH_FAILURES_PER_MINUTE", trustedProxies: "TRUSTED_PROXIES",
	bodyLimit: "BODY_LIMIT", authCacheSeconds: "AUTH_CACHE_SECONDS", requestTimeoutMs: "REQUEST_TIMEOUT_MS", heartbeatInterval: "HEARTBEAT_INTERVAL", heartbeatTimeout: "HEARTBEAT_TIMEOUT",
	sentryDsn: "SENTRY_DSN", sentryEnvironment: "SENTRY_ENVIRONMENT", metricsPort: "METRICS_PORT", metricsHost: "METRICS_HOST",
	auditVerifySeconds: "AUDIT_VERIFY_SECONDS", zipkinUrl: "ZIPKIN_URL",
	webhooksAllowPrivate: "WEBHOOKS_ALLOW_PRIVATE", webhooksMonitorsMax: "WEBHOOKS_MONITORS_MAX"
};

function readSetting(env: NodeJS.ProcessEnv, name: string): string | undefined {
	// A value given directly wins, so a developer can override one setting of the dev secrets.
	const value = env[name];
	if (value !== undefined && value !== "") return value;
	const file = env[`${name}_FILE`];
	if (!file) return undefined;
	try {
		return readFileSync(file, "utf8").trim();
	} catch (err) {
		throw new ConfigError(`${name}_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code})`);
	}
}

const check = new Validator({ haltOnFirstError: false }).compile(schema);

function checkedAddressList(text: string): string {
	try {
		parseAddressList(text);
		return text;
	} catch (err) {
		throw new ConfigError(`Invalid configuration: TRUSTED_PROXIES (or TRUSTED_PROXIES_FILE): ${(err as Error).message}`);
	}
}

/** Reads and validates the settings; throws ConfigError naming every bad variable (never its value). */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
	const raw: Record<string, unknown> = {};
	for (const name of Object.keys(schema)) if (!name.startsWith("$$")) raw[name] = readSetting(env, name);
	const result = check(raw);
	if (result !== true) {
		const names = [...new Set((result as { field: string }[]).map(e => e.field))];
		throw new ConfigError(`Invalid configuration: ${names.map(n => `${n} (or ${n}_FILE)`).join(", ")} — see README "Configuration"`);
	}
	const s = raw as Record<string, any>;
	const cfg: Config = {
		env: s.NODE_ENV, namespace: s.NAMESPACE, nodeId: s.NODE_ID, transporter: s.TRANSPORTER, natsCa: s.NATS_CA,
		postgresUrl: s.POSTGRES_URL, postgresOwnerUrl: s.POSTGRES_OWNER_URL, mongoUrl: s.MONGO_URL,
		elasticsearchUrl: s.ELASTICSEARCH_URL, postgresPoolMax: s.POSTGRES_POOL_MAX, mongoPoolMax: s.MONGO_POOL_MAX, esIndexPrefix: s.ES_INDEX_PREFIX, ingestMaxMovements: s.INGEST_MAX_MOVEMENTS,
		ingestBodyLimit: s.INGEST_BODY_LIMIT, jetstreamMaxBytes: s.JETSTREAM_MAX_BYTES,
		jetstreamReplicas: s.JETSTREAM_REPLICAS, esReplicas: s.ES_REPLICAS, esWaitForActiveShards: s.ES_WAIT_FOR_ACTIVE_SHARDS, adminApiKey: s.ADMIN_API_KEY,
		blindIndexKey: s.BLIND_INDEX_KEY && Buffer.from(s.BLIND_INDEX_KEY, "base64"),
		pseudonymKey: s.PSEUDONYM_KEY && Buffer.from(s.PSEUDONYM_KEY, "base64"),
		auditCheckpointSeconds: s.AUDIT_CHECKPOINT_SECONDS,
		callerTokenSeconds: s.CALLER_TOKEN_SECONDS, port: s.PORT, host: s.HOST, logLevel: s.LOG_LEVEL, logFormat: s.LOG_FORMAT,
		rateLimitPerMinute: s.RATE_LIMIT_PER_MINUTE, authFailuresPerMinute: s.AUTH_FAILURES_PER_MINUTE, trustedProxies: checkedAddressList(s.TRUSTED_PROXIES ?? ""), bodyLimit: s.BODY_LIMIT,
		authCacheSeconds: s.AUTH_CACHE_SECONDS, requestTimeoutMs: s.REQUEST_TIMEOUT_MS, heartbeatInterval: s.HEARTBEAT_INTERVAL, heartbeatTimeout: s.HEARTBEAT_TIMEOUT,
		sentryDsn: s.SENTRY_DSN, sentryEnvironment: s.SENTRY_ENVIRONMENT ?? s.NODE_ENV,
		metricsPort: s.METRICS_PORT, metricsHost: s.METRICS_HOST, auditVerifySeconds: s.AUDIT_VERIFY_SECONDS, zipkinUrl: s.ZIPKIN_URL,
		webhooksAllowPrivate: s.WEBHOOKS_ALLOW_PRIVATE === "true", webhooksMonitorsMax: s.WEBHOOKS_MONITORS_MAX
	};
	for (const [name, field] of [["PII_KEYS", "piiKeys"], ["AUDIT_CHAIN_KEYS", "auditChainKeys"]] as const) {
		if (!s[name]) continue;
		try {
			cfg[field] = parseDataKeys(s[name]);
		} catch (err) {
			throw new ConfigError(`Invalid configuration: ${name} (or ${name}_FILE): ${(err as Error).message}`);
		}
	}
	for (const [name, field, kind] of [["MESH_KEYS", "meshKeys", "private"], ["MESH_PUBLIC_KEYS", "meshPublicKeys", "public"]] as const) {
		if (!s[name]) continue;
		try {
			cfg[field] = parseGroupKeys(s[name], kind);
		} catch (err) {
			throw new ConfigError(`Invalid configuration: ${name} (or ${name}_FILE): ${(err as Error).message}`);
		}
	}
	return cfg;
}

/** The value of a setting this process cannot run without; the error names the variable. */
export function need<K extends keyof Config>(cfg: Config, key: K): NonNullable<Config[K]> {
	const value = cfg[key];
	if (value === undefined || value === null) {
		const name = ENV_NAMES[key];
		throw new ConfigError(`Missing configuration: ${name} (or ${name}_FILE) is required by the services this process runs`);
	}
	return value as NonNullable<Config[K]>;
}

/** Read once per process. */
export const config: Config = loadConfig();

/** `8mb` → 8 388 608: a size as INGEST_BODY_LIMIT and BODY_LIMIT write it (digits, then kb or mb). */
export function sizeInBytes(size: string): number {
	const m = /^(\d+)(kb|mb)$/.exec(size);
	if (!m) throw new Error(`'${size}' is not a size like 512kb or 8mb`);
	return Number(m[1]) * (m[2] === "kb" ? 1024 : 1024 * 1024);
}
