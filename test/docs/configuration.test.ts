import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

// docs/configuration.md is where an operator looks up a setting: every variable config/index.ts reads must be there.
const ROOT = path.resolve(__dirname, "../..");
const source = readFileSync(path.join(ROOT, "config/index.ts"), "utf8");
const doc = readFileSync(path.join(ROOT, "docs/configuration.md"), "utf8");

describe("docs/configuration.md", () => {
	it("documents every variable config/index.ts reads", () => {
		const schema = source.slice(source.indexOf("const schema = {"), source.indexOf("\n};", source.indexOf("const schema = {")));
		const names = [...schema.matchAll(/^\t([A-Z][A-Z0-9_]+): \{/gm)].map(m => m[1]);
		expect(names.length).toBeGreaterThan(20);
		expect(names.filter(n => !doc.includes(`\`${n}\``))).toEqual([]);
	});
});
