import { execFileSync } from "node:child_process";
import { defineConfig } from "vitest/config";

// The tests use the local engines' test database and credentials (scripts/engines.sh env test).
const exports = execFileSync("bash", ["scripts/engines.sh", "env", "test"], { encoding: "utf8" });
for (const line of exports.split("\n")) {
	const m = /^export ([A-Z_]+)=(.*)$/.exec(line.trim());
	if (m) process.env[m[1]] = m[2].replace(/^['"]|['"]$/g, "");
}
process.env.NODE_ENV = "test";
process.env.LOG_LEVEL ??= "warn";
// Tests knock without keys from one address many times a minute; the per-address limit's own test sets a low one.
process.env.AUTH_FAILURES_PER_MINUTE ??= "100000";
// Each test gateway listens on a free port.
process.env.PORT = "0";

export default defineConfig({
	test: {
		include: ["test/**/*.test.ts"],
		globalSetup: ["test/support/global-setup.ts"],
		// Files share one database and some stop PostgreSQL on purpose: run them one at a time.
		fileParallelism: false,
		testTimeout: 30_000,
		hookTimeout: 60_000
	}
});
