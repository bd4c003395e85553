import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { load } from "js-yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { prometheusReporter } from "../../broker/prometheus.reporter";
import { api, startMesh, type Mesh } from "../support/mesh";
import { OWN_METRICS_PORTS } from "../support/prometheus";

// docker/grafana/: the provisioned data sources, dashboard provider and dashboard. Every query of the
// dashboard (and every alert rule) must name metrics that a real mesh's /metrics carries: a renamed
// metric would otherwise leave an empty panel, or an alert that never fires.

const DIR = resolve(__dirname, "../../docker");
const dashboard = JSON.parse(readFileSync(resolve(DIR, "grafana/credit-mesh.json"), "utf8"));
const datasources = load(readFileSync(resolve(DIR, "grafana/datasources.yml"), "utf8")) as any;
const providers = load(readFileSync(resolve(DIR, "grafana/dashboards.yml"), "utf8")) as any;
const alerts = load(readFileSync(resolve(DIR, "prometheus/alerts.yml"), "utf8")) as any;
const stack = load(readFileSync(resolve(__dirname, "../../docker-stack.yml"), "utf8")) as any;

const panels: any[] = dashboard.panels.filter((p: any) => p.type !== "row");
const queries: string[] = panels.flatMap(p => p.targets.map((t: any) => t.expr));

/** Series Prometheus makes itself, not found on any /metrics. */
const SYNTHETIC = new Set(["up"]);
const KEYWORDS = new Set(["by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset", "bool", "inf", "nan"]);

/** The metric names a PromQL expression reads (not its functions, labels, grouping or durations). */
function metricNames(expr: string): string[] {
	const bare = expr
		.replace(/"(?:[^"\\]|\\.)*"/g, "\"\"")          // label values
		.replace(/\{[^}]*\}/g, "")                        // label matchers
		.replace(/\[[^\]]*\]/g, "")                       // range selectors, $__rate_interval
		.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ");
	// Whole identifiers; one followed by "(" is a function or an aggregation.
	const names = [...bare.matchAll(/(?<![\w:$.])([a-zA-Z_:][\w:]*)(\s*\()?/g)].filter(m => !m[2]).map(m => m[1]);
	return [...new Set(names.filter(n => !KEYWORDS.has(n.toLowerCase())))];
}

describe("docker/grafana: provisioning", () => {
	it("the data sources are the stack's Prometheus and Zipkin, under fixed uids", () => {
		expect(datasources.apiVersion).toBe(1);
		const byType = Object.fromEntries(datasources.datasources.map((d: any) => [d.type, d]));
		expect(byType.prometheus).toMatchObject({ uid: "credit-mesh-prometheus", url: "http://prometheus:9090", access: "proxy", isDefault: true });
		expect(byType.zipkin).toMatchObject({ uid: "credit-mesh-zipkin", url: "http://zipkin:9411" });
		// The URLs are the stack's services on `monitoring`.
		expect(stack.services.prometheus.command).toContain("--web.listen-address=:9090");
		expect(stack.services.zipkin).toBeDefined();
	});

	it("the provider reads the directory the stack mounts the dashboard into, read-only in the UI", () => {
		const [provider] = providers.providers;
		expect(provider.type).toBe("file");
		expect(provider.allowUiUpdates).toBe(false);
		const mounted = stack.services.grafana.configs.find((c: any) => c.source === "grafana_dashboard_mesh").target;
		expect(mounted).toBe(`${provider.options.path}/credit-mesh.json`);
		for (const [source, dir] of [["grafana_datasources", "datasources"], ["grafana_dashboards", "dashboards"]]) {
			expect(stack.services.grafana.configs.find((c: any) => c.source === source).target).toMatch(new RegExp(`^/etc/grafana/provisioning/${dir}/[\\w-]+\\.yml$`));
		}
	});

	it("the dashboard: unique panel ids, every panel on the provisioned Prometheus, the sections the operators need", () => {
		expect(dashboard.uid).toBe("credit-mesh");
		const ids = dashboard.panels.map((p: any) => p.id);
		expect(new Set(ids).size).toBe(ids.length);
		for (const p of panels) {
			expect(p.datasource, p.title).toEqual({ type: "prometheus", uid: "credit-mesh-prometheus" });
			expect(p.targets.length, p.title).toBeGreaterThan(0);
			for (const t of p.targets) expect(t.expr, p.title).toMatch(/\S/);
		}
		// Per route rate, latency and errors; per base health; the ingest lag.
		const all = queries.join("\n");
		expect(all).toMatch(/sum by \(route\) \(rate\(credit_mesh_http_requests_total/);
		expect(all).toMatch(/histogram_quantile\(0\.99, sum by \(route, le\) \(rate\(credit_mesh_http_request_duration_seconds_bucket/);
		expect(all).toMatch(/status=~"5\.\."/);
		expect(all).toMatch(/min by \(base\) \(credit_mesh_base_up\)/);
		expect(all).toMatch(/credit_mesh_jetstream_consumer_pending/);
	});

	it("reads the metric names out of PromQL (the helper the next test relies on)", () => {
		expect(metricNames('histogram_quantile(0.99, sum by (route, le) (rate(a_bucket{route!~"/x/(y|z)"}[5m]))) > 1')).toEqual(["a_bucket"]);
		expect(metricNames("sum by (job) (up{job=~\"credit-mesh-.+\"}) == 0")).toEqual(["up"]);
		expect(metricNames("time() - max(b_seconds) > 3 * 3600")).toEqual(["b_seconds"]);
		expect(metricNames("sum(rate(x[$__rate_interval])) / sum(rate(y[$__rate_interval]))")).toEqual(["x", "y"]);
	});
});

describe("every metric the dashboard and the alert rules read is on a real mesh's /metrics", () => {
	let mesh: Mesh;
	const exposed = new Set<string>();

	beforeAll(async () => {
		mesh = await startMesh(undefined, { broker: OWN_METRICS_PORTS });
		// Some series exist only once something happened: an answer, an error.
		await api(mesh, "GET", "/api/v1/persons/52998224725");
		await api(mesh, "GET", "/health/ready");
		for (const broker of mesh.brokers) {
			const port = prometheusReporter(broker)!.ownPort();
			const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
			for (const line of text.split("\n")) {
				const m = /^([a-zA-Z_:][\w:]*)[{ ]/.exec(line);
				if (m) exposed.add(m[1]);
			}
		}
		// The gateway's own metrics port has its HTTP metrics; its HTTP port, given one, has no /metrics (nor documents it).
		expect([...exposed]).toContain("credit_mesh_http_requests_total");
		expect((await fetch(`${mesh.url}/metrics`)).status).toBe(404);
		const doc = (await (await fetch(`${mesh.url}/openapi.json`)).json()) as { paths: Record<string, unknown> };
		expect(doc.paths["/metrics"]).toBeUndefined();
	}, 90_000);

	afterAll(async () => {
		await mesh?.stop();
	});

	it("the dashboard's queries", () => {
		expect(exposed.size).toBeGreaterThan(20);
		const missing = queries.flatMap(q => metricNames(q).filter(n => !SYNTHETIC.has(n) && !exposed.has(n)).map(n => `${n} in ${q}`));
		expect(missing).toEqual([]);
	});

	it("the alert rules' expressions", () => {
		const exprs: string[] = alerts.groups.flatMap((g: any) => g.rules.map((r: any) => r.expr));
		expect(exprs.length).toBe(10);
		const missing = exprs.flatMap(q => metricNames(q).filter(n => !SYNTHETIC.has(n) && !exposed.has(n)).map(n => `${n} in ${q}`));
		expect(missing).toEqual([]);
	});
});
