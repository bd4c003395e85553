// `npm run image` (scripts/image.sh): the release image built from ./Dockerfile with buildah, then its own
// code run against the local engines (migration, gateway and the base groups over NATS). No Docker
// engine, no registry: the base is made locally and cached under $CREDIT_MESH_DATA/image, so the first
// run on a machine takes minutes (docs/deploy.md) and later ones well under a minute.
import { execFile } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = resolve(__dirname, "../..");
const DATA = resolve(ROOT, process.env.CREDIT_MESH_DATA ?? ".data");
const WORK = resolve(DATA, "image");

function run(file: string, args: string[]): Promise<{ code: number; out: string }> {
	return new Promise(done => {
		execFile(file, args, { cwd: ROOT, env: process.env, maxBuffer: 16 * 1024 * 1024, timeout: 25 * 60_000 }, (err, stdout, stderr) => {
			done({ code: err ? ((err as { code?: unknown }).code as number) ?? 1 : 0, out: `${stdout}${stderr}` });
		});
	});
}

describe("npm run image", () => {
	it("builds the image, reports its size, and its migration, gateway and groups serve over the local engines; leaves nothing mounted", async () => {
		const { code, out } = await run("bash", ["scripts/image.sh"]);
		expect(out).toMatch(/^image: size localhost\/credit-mesh:test \d+(\.\d+)? [kMG]B$/m);
		expect(out).toMatch(/^image: no development secret in \/app; \/app\/dist read-only for node$/m);
		expect(out).toMatch(/^image: migrate: exit 0$/m);
		for (const group of ["api", "base-a", "base-b", "base-c"]) {
			expect(out).toMatch(new RegExp(`^image: started ${group}: SERVICES=\\S+ node node_modules/moleculer/bin/moleculer-runner\\.js`, "m"));
		}
		expect(out).toMatch(/^image: GET \/health\/ready 200 /m);
		expect(out).toMatch(/^image: HEALTHCHECK \(api\): exit 0$/m);
		expect(out).toMatch(/^image: POST \/api\/v1\/persons 201$/m);
		expect(out).toMatch(/^image: GET \/api\/v1\/persons\/:cpf 200$/m);
		expect(code, out).toBe(0);

		// Clean-up: no mount left under the image's storage, no working container, no secret copy.
		const mounts = readFileSync("/proc/mounts", "utf8").split("\n").filter(l => l.includes(` ${WORK}/`));
		expect(mounts).toEqual([]);
		const containers = await run("buildah", ["--root", `${WORK}/storage`, "--runroot", `${WORK}/run`, "--storage-driver", "overlay", "containers", "--quiet"]);
		expect(containers).toEqual({ code: 0, out: "" });
		expect(readdirSync(WORK).filter(name => name.startsWith("secrets."))).toEqual([]);
	}, 30 * 60_000);
});
