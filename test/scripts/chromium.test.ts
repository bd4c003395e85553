// scripts/chromium.sh runs before any test (npm test): it must either leave a browser in place or stop
// the run with one clear line, never let the Swagger UI test fail deep inside the run.
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";

const run = (env: Record<string, string>) =>
	spawnSync("bash", ["scripts/chromium.sh"], { env: { ...process.env, ...env }, encoding: "utf8" });

describe("scripts/chromium.sh", () => {
	it("is silent and succeeds when the browser is there", () => {
		const r = run({ CHROMIUM_PATH: process.execPath });
		expect(r.status).toBe(0);
		expect(r.stdout + r.stderr).toBe("");
	});

	it("stops with one line naming the missing browser, installing nothing, when CHROMIUM_PATH points nowhere", () => {
		const r = run({ CHROMIUM_PATH: "/nonexistent/chromium" });
		expect(r.status).toBe(1);
		expect(r.stdout).toBe("");
		expect(r.stderr.trim().split("\n")).toEqual(["chromium.sh: CHROMIUM_PATH=/nonexistent/chromium is not an executable"]);
	});
});
