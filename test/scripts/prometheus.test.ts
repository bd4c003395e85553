// scripts/prometheus.sh runs before any test (npm test): it must either leave Prometheus and promtool in
// place or stop the run with one clear line, and never leave Debian's own daemon running.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

const run = (env: Record<string, string>) =>
	spawnSync("bash", ["scripts/prometheus.sh"], { env: { ...process.env, ...env }, encoding: "utf8" });

describe("scripts/prometheus.sh", () => {
	it("is silent and succeeds when both binaries are there", () => {
		const r = run({ PROMETHEUS_PATH: process.execPath, PROMTOOL_PATH: process.execPath });
		expect(r.status).toBe(0);
		expect(r.stdout + r.stderr).toBe("");
	});

	it("stops with one line naming the missing binary, installing nothing, when a path points nowhere", () => {
		const r = run({ PROMETHEUS_PATH: "/nonexistent/prometheus", PROMTOOL_PATH: process.execPath });
		expect(r.status).toBe(1);
		expect(r.stdout).toBe("");
		expect(r.stderr.trim().split("\n")).toEqual(["prometheus.sh: PROMETHEUS_PATH=/nonexistent/prometheus is not an executable"]);
	});

	it("forbids Debian's package from starting its daemon while it installs (policy-rc.d, exit 101)", () => {
		const script = readFileSync("scripts/prometheus.sh", "utf8");
		expect(script).toMatch(/printf '#!\/bin\/sh\\nexit 101\\n' >"\$policy"/);
		expect(script.indexOf("policy-rc.d")).toBeLessThan(script.indexOf("apt-get"));
		expect(readFileSync("package.json", "utf8")).toMatch(/bash scripts\/chromium\.sh && bash scripts\/prometheus\.sh/);
	});
});
