import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync, writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { load } from "js-yaml";
import { describe, expect, it } from "vitest";

// bitbucket-pipelines.yml, the seed's delivery tool: checked against Bitbucket's published schema (the
// copy check-jsonschema vendors from SchemaStore, installed by scripts/python-tools.sh), then against
// what it promises: test on every branch exactly as CI does, on main build + push + deploy, no secret.

const ROOT = resolve(__dirname, "../..");
const FILE = resolve(ROOT, "bitbucket-pipelines.yml");
const text = readFileSync(FILE, "utf8");
const pipelines = load(text) as any;
const CHECK = execFileSync("bash", [join(ROOT, "scripts/python-tools.sh"), "path", "check-jsonschema"], { encoding: "utf8" }).trim();

const validate = (file: string) => spawnSync(CHECK, ["--builtin-schema", "vendor.bitbucket-pipelines", file], { encoding: "utf8" });
const scriptOf = (step: any): string => (step.step.script as string[]).join("\n");

describe("bitbucket-pipelines.yml", () => {
	it("validates against Bitbucket Pipelines' published schema, which does refuse a broken file", () => {
		const ok = validate(FILE);
		expect(ok.status, ok.stdout + ok.stderr).toBe(0);
		// The schema check can fail: a step size Bitbucket does not have is refused.
		const broken = join(mkdtempSync(join(tmpdir(), "pipelines-")), "bitbucket-pipelines.yml");
		writeFileSync(broken, "pipelines:\n  default:\n    - step:\n        size: 9x\n        script: [ls]\n");
		expect(validate(broken).status).not.toBe(0);
	});

	it("tests every branch and pull request with the same entry point as CI (.ci/run runs the README's test command)", () => {
		const steps = [...pipelines.pipelines.default, ...pipelines.pipelines["pull-requests"]["**"], pipelines.pipelines.branches.main[0]];
		for (const step of steps) expect(scriptOf(step)).toBe("bash .ci/run");
		// On a machine of its own, as CI here: the image test builds with buildah and chroots, which a Pipelines container refuses.
		for (const step of steps) expect(step.step["runs-on"]).toEqual(["self.hosted", "linux.shell"]);
		expect(readFileSync(join(ROOT, ".ci/run"), "utf8")).toMatch(/\nnpm test\s*$|\bnpm test\b/);
	});

	it("on main: test, then build and push the image under the commit and main tags, then redeploy through Portainer", () => {
		const [test, image, deploy] = pipelines.pipelines.branches.main;
		expect(scriptOf(test)).toBe("bash .ci/run");
		expect(image.step.services).toContain("docker");
		expect(scriptOf(image)).toMatch(/docker build[^\n]*-t "\$IMAGE:\$BITBUCKET_COMMIT"/);
		expect(scriptOf(image)).toMatch(/docker push "\$IMAGE:\$BITBUCKET_COMMIT"/);
		expect(deploy.step.deployment).toBe("production");
		expect(scriptOf(deploy)).toMatch(/curl --fail[^\n]*-X POST "\$PORTAINER_STACK_WEBHOOK"/);
	});

	it("holds no secret: credentials come from repository variables, the password through stdin", () => {
		expect(text).not.toMatch(/password\s*[:=]\s*\S/i);
		expect(text).not.toMatch(/-p\s+\S|--password\s+\S/);
		expect(text).toMatch(/echo "\$REGISTRY_PASSWORD" \| docker login --username "\$REGISTRY_USER" --password-stdin/);
		for (const name of ["REGISTRY", "REGISTRY_USER", "REGISTRY_PASSWORD", "PORTAINER_STACK_WEBHOOK"]) {
			expect(readFileSync(join(ROOT, "docs/deploy.md"), "utf8"), `docs/deploy.md names ${name}`).toContain(name);
		}
	});
});
