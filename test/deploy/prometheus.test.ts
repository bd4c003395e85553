import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { load } from "js-yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SERVICE_GROUPS } from "../../config/groups";
import { api, engines, eventually, startMesh, type Mesh } from "../support/mesh";
import { OWN_METRICS_PORTS, PROMTOOL, meshTargets, startPrometheus, type RunningPrometheus } from "../support/prometheus";

// docker/prometheus/: the stack's scrape config and alert rules. promtool (Debian's, installed by
// scripts/prometheus.sh) checks both and runs the rules' unit tests; then a real Prometheus scrapes a
// real mesh on loopback with those rules and an alert fires when a base goes down.

const DIR = resolve(__dirname, "../../docker/prometheus");
const RULES = readFileSync(join(DIR, "alerts.yml"), "utf8");
const stack = load(readFileSync(resolve(__dirname, "../../docker-stack.yml"), "utf8")) as any;

function promtool(...args: string[]): string {
	return execFileSync(PROMTOOL, args, { encoding: "utf8", cwd: DIR });
}

describe("docker/prometheus: promtool", () => {
	it("the alert rules are valid (promtool check rules)", () => {
		expect(promtool("check", "rules", "alerts.yml")).toMatch(/SUCCESS: 10 rules found/);
	});

	it("each rule fires on its case and stays quiet otherwise (promtool test rules alerts.test.yml)", () => {
		expect(promtool("test", "rules", "alerts.test.yml")).toMatch(/SUCCESS/);
		// Every alert of alerts.yml has a case in the unit tests.
		const alerts = (load(RULES) as any).groups.flatMap((g: any) => g.rules.map((r: any) => r.alert));
		const tested = readFileSync(join(DIR, "alerts.test.yml"), "utf8");
		for (const alert of alerts) expect(tested, alert).toContain(`alertname: ${alert}`);
	});

	it("the scrape config is valid with the rules where the stack mounts them (promtool check config)", () => {
		// The stack mounts alerts.yml at /etc/prometheus/alerts.yml; here it sits beside the config.
		const dir = mkdtempSync(join(tmpdir(), "credit-mesh-promtool-"));
		try {
			const config = readFileSync(join(DIR, "prometheus.yml"), "utf8");
			expect(config).toContain("rule_files: [/etc/prometheus/alerts.yml]");
			writeFileSync(join(dir, "prometheus.yml"), config.replace("/etc/prometheus/alerts.yml", "alerts.yml"));
			copyFileSync(join(DIR, "alerts.yml"), join(dir, "alerts.yml"));
			expect(execFileSync(PROMTOOL, ["check", "config", "prometheus.yml"], { encoding: "utf8", cwd: dir })).toMatch(/SUCCESS: prometheus\.yml is valid/);
		} finally {
			rmSync(dir, { recursive: true, force: true });
		}
	});

	it("scrapes every service group of the stack, each replica on the port it serves metrics on", () => {
		const monitoringSubnet = stack.networks.monitoring.ipam.config[0].subnet;
		expect(monitoringSubnet).toMatch(/^\d+\.\d+\.\d+\.\d+\/\d+$/);
		const jobs = (load(readFileSync(join(DIR, "prometheus.yml"), "utf8")) as any).scrape_configs;
		for (const group of Object.keys(SERVICE_GROUPS)) {
			const svc = stack.services[group];
			expect(svc, group).toBeDefined();
			const job = jobs.find((j: any) => j.job_name === `credit-mesh-${group}`);
			expect(job, `no scrape job for ${group}`).toBeDefined();
			const sd = job.dns_sd_configs[0];
			expect(sd.names).toEqual([`tasks.${group}`]);
			// Every group, the gateway too, on METRICS_PORT, bound to its address on the monitoring network alone.
			expect(sd.port, group).toBe(Number(svc.environment.METRICS_PORT));
			expect(sd.port, group).not.toBe(Number(svc.environment.PORT ?? 0));
			expect(svc.environment.METRICS_HOST, group).toBe(monitoringSubnet);
			expect(svc.networks, group).toContain("monitoring");
		}
	});
});

describe("a real Prometheus with these rules, scraping a real mesh", () => {
	let mesh: Mesh;
	let prometheus: RunningPrometheus;

	beforeAll(async () => {
		// Base A's outage below is meant: its warnings are not shown.
		mesh = await startMesh(undefined, { broker: OWN_METRICS_PORTS, logLevel: "error" });
		// The rules as they are, but each `for:` shortened to a second: the expressions and labels are what is tested.
		const rules = RULES.replace(/^(\s+)for: \S+$/gm, "$1for: 1s");
		prometheus = await startPrometheus({ targets: meshTargets(mesh), rules: [rules], scrapeSeconds: 3, evaluationSeconds: 1 });
	}, 90_000);

	afterAll(async () => {
		await engines("up", "postgres");
		await prometheus?.stop();
		await mesh?.stop();
	}, 120_000);

	it("scrapes every node of every group (our exposition parses)", async () => {
		const targets = await eventually(
			() => prometheus.get("/api/v1/targets?state=active"),
			(d: any) => d.activeTargets.length === mesh.brokers.length && d.activeTargets.every((t: any) => t.health === "up"),
			30_000, 500
		);
		expect(targets.activeTargets.map((t: any) => [t.labels.job, t.health, t.lastError]).filter(([, h]: string[]) => h !== "up")).toEqual([]);
		expect(new Set(targets.activeTargets.map((t: any) => t.labels.job))).toEqual(new Set(Object.keys(SERVICE_GROUPS).map(g => `credit-mesh-${g}`)));
		// Quiet while all is well.
		const { alerts } = await prometheus.get("/api/v1/alerts");
		expect(alerts.filter((a: any) => a.state === "firing").map((a: any) => a.labels.alertname)).toEqual([]);
	}, 40_000);

	it("Base A down: CreditMeshBaseDown {base=A} and CreditMeshHigh5xxRate on the lookup route fire", async () => {
		// The key is checked (and cached) while Base A is up.
		expect((await api(mesh, "GET", "/api/v1/persons/52998224725")).status).toBe(404);
		await engines("down", "postgres");
		// Lookups now answer 503 (with Retry-After); keep asking while Prometheus scrapes.
		const firing = await eventually(async () => {
			const res = await api(mesh, "GET", "/api/v1/persons/52998224725");
			expect(res.status).toBe(503);
			const { alerts } = await prometheus.get("/api/v1/alerts");
			return alerts.filter((a: any) => a.state === "firing");
		}, (alerts: any[]) => alerts.some(a => a.labels.alertname === "CreditMeshBaseDown") && alerts.some(a => a.labels.alertname === "CreditMeshHigh5xxRate"), 60_000, 500);
		const baseDown = firing.filter((a: any) => a.labels.alertname === "CreditMeshBaseDown");
		expect(baseDown.map((a: any) => a.labels.base)).toContain("A");
		expect(baseDown.find((a: any) => a.labels.base === "A").labels.severity).toBe("critical");
		const errors = firing.filter((a: any) => a.labels.alertname === "CreditMeshHigh5xxRate");
		expect(errors.map((a: any) => a.labels.route)).toContain("/api/v1/persons/:cpf");
		expect(errors[0].annotations.summary).toMatch(/of answers are 5xx/);
	}, 90_000);
});
