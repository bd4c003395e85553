// scripts/engines.sh's `--cluster` plumbing (issue 18): the settings `env --cluster` prints over the single
// engines' ones, and the CLI's refusals. The clusters themselves are started and killed by test/cluster.test.ts.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { enginesEnv } from "../../bench/lib/engines";

const run = (...args: string[]) => promisify(execFile)("bash", ["scripts/engines.sh", ...args], { timeout: 30_000 });

describe("engines.sh --cluster", () => {
	it("env --cluster points the transporter and Base C at every node of the clusters, with their copy counts", () => {
		const single = enginesEnv(process.cwd(), "test");
		const cluster = enginesEnv(process.cwd(), "test --cluster");
		expect(single.TRANSPORTER_FILE).toMatch(/\/transporter$/);
		expect(cluster.TRANSPORTER_FILE).toMatch(/\/transporter_cluster$/);
		expect(cluster.ELASTICSEARCH_URL_FILE).toMatch(/\/elasticsearch_cluster_url$/);
		expect(cluster).toMatchObject({ JETSTREAM_REPLICAS: "3", ES_REPLICAS: "1", ES_WAIT_FOR_ACTIVE_SHARDS: "all" });
		// Base A on the PostgreSQL pair (scripts/engines/postgres-pair.sh); everything else stays the single engines'.
		expect(cluster.POSTGRES_URL_FILE).toMatch(/\/postgres_pair_test_url$/);
		for (const name of ["MONGO_URL_FILE", "MESH_KEYS_FILE", "ES_INDEX_PREFIX"]) expect(cluster[name], name).toBe(single[name]);
		expect(single.JETSTREAM_REPLICAS).toBeUndefined();
	});

	it("a group's settings with --cluster use that group's own NATS user on every node, whatever the order of the flags", () => {
		expect(enginesEnv(process.cwd(), "test --cluster --group base-c").TRANSPORTER_FILE).toMatch(/\/transporter_cluster_base-c$/);
		expect(enginesEnv(process.cwd(), "test --group base-c --cluster").TRANSPORTER_FILE).toMatch(/\/transporter_cluster_base-c$/);
		expect(enginesEnv(process.cwd(), "test --group base-c --cluster").MESH_KEYS_FILE).toMatch(/\/mesh_key_base-c$/);
	});

	it("pid --cluster names a part and a node, and refuses any other", async () => {
		await expect(run("pid", "--cluster", "nats", "4")).rejects.toMatchObject({ stderr: expect.stringMatching(/no node '4' \(1-3\)/) });
		await expect(run("pid", "--cluster", "redis", "1")).rejects.toMatchObject({ stderr: expect.stringMatching(/unknown cluster part 'redis'/) });
		await expect(run("pid", "--cluster", "nats")).rejects.toMatchObject({ stderr: expect.stringMatching(/usage: engines\.sh pid --cluster <part> <node>/) });
	});
});
