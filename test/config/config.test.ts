import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, need } from "../../config";
import { esNodes } from "../../config/elasticsearch";

const key = Buffer.alloc(32, 7).toString("base64");

describe("config", () => {
	it("has working defaults", () => {
		const cfg = loadConfig({});
		expect(cfg.port).toBe(3000);
		expect(cfg.host).toBe("127.0.0.1");
		expect(cfg.env).toBe("development");
	});

	it("keeps one copy of streams and no index replica on one server by default; the clusters' counts when set", () => {
		expect(loadConfig({})).toMatchObject({ jetstreamReplicas: 1, esReplicas: 0, esWaitForActiveShards: "1" });
		expect(loadConfig({ JETSTREAM_REPLICAS: "3", ES_REPLICAS: "1", ES_WAIT_FOR_ACTIVE_SHARDS: "all" })).toMatchObject({ jetstreamReplicas: 3, esReplicas: 1, esWaitForActiveShards: "all" });
		expect(() => loadConfig({ JETSTREAM_REPLICAS: "0" })).toThrow(/JETSTREAM_REPLICAS/);
		expect(() => loadConfig({ ES_WAIT_FOR_ACTIVE_SHARDS: "most" })).toThrow(/ES_WAIT_FOR_ACTIVE_SHARDS/);
	});

	it("takes every node of a cluster, comma-separated, in ELASTICSEARCH_URL", () => {
		const url = "http://u:p@es-1:9200,http://u:p@es-2:9200, http://u:p@es-3:9200";
		expect(esNodes(loadConfig({ ELASTICSEARCH_URL: url }).elasticsearchUrl!)).toEqual(["http://u:p@es-1:9200", "http://u:p@es-2:9200", "http://u:p@es-3:9200"]);
		expect(esNodes("http://127.0.0.1:9200")).toEqual(["http://127.0.0.1:9200"]);
	});

	it("reads NAME_FILE (a Swarm secret), and NAME wins over it", () => {
		const dir = mkdtempSync(join(tmpdir(), "cfg-"));
		writeFileSync(join(dir, "pg"), "postgres://a:b@db/credit\n");
		expect(loadConfig({ POSTGRES_URL_FILE: join(dir, "pg") }).postgresUrl).toBe("postgres://a:b@db/credit");
		expect(loadConfig({ POSTGRES_URL_FILE: join(dir, "pg"), POSTGRES_URL: "postgres://x@y/z" }).postgresUrl).toBe("postgres://x@y/z");
		expect(() => loadConfig({ PII_KEYS_FILE: join(dir, "missing") })).toThrow(/PII_KEYS_FILE: cannot read/);
	});

	it("names every bad variable and never echoes its value", () => {
		try {
			loadConfig({ PORT: "http", POSTGRES_URL: "mysql://secret-password@x", BLIND_INDEX_KEY: "short" });
			expect.unreachable();
		} catch (err) {
			expect(err).toBeInstanceOf(ConfigError);
			const msg = (err as Error).message;
			expect(msg).toContain("PORT");
			expect(msg).toContain("POSTGRES_URL");
			expect(msg).toContain("BLIND_INDEX_KEY");
			expect(msg).not.toContain("secret-password");
		}
	});

	it("validates PII_KEYS", () => {
		expect(loadConfig({ PII_KEYS: `k1:${key}` }).piiKeys?.[0].id).toBe("k1");
		expect(() => loadConfig({ PII_KEYS: `k1:${Buffer.alloc(16).toString("base64")}` })).toThrow(/PII_KEYS.*32 bytes/);
	});

	it("validates AUDIT_CHAIN_KEYS as PII_KEYS, and bounds the checkpoint interval to a minute", () => {
		expect(loadConfig({ AUDIT_CHAIN_KEYS: `a1:${key}` }).auditChainKeys?.[0].id).toBe("a1");
		expect(() => loadConfig({ AUDIT_CHAIN_KEYS: `a1:${Buffer.alloc(16).toString("base64")}` })).toThrow(/AUDIT_CHAIN_KEYS.*32 bytes/);
		expect(loadConfig({}).auditCheckpointSeconds).toBe(60);
		expect(() => loadConfig({ AUDIT_CHECKPOINT_SECONDS: "61" })).toThrow(/AUDIT_CHECKPOINT_SECONDS/);
	});

	it("need() names what is missing", () => {
		expect(() => need(loadConfig({ NODE_ENV: "production" }), "transporter")).toThrow(/TRANSPORTER/);
		expect(() => need(loadConfig({}), "postgresUrl")).toThrow(/POSTGRES_URL \(or POSTGRES_URL_FILE\)/);
	});
});
