import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generatePerson } from "../../scripts/seed";
import { api, eventually, startMesh, type Mesh } from "../support/mesh";

// The demo loader against the real mesh, as a child process (node --import tsx scripts/seed.ts).

let mesh: Mesh;
beforeAll(async () => {
	mesh = await startMesh();
});
afterAll(async () => {
	await mesh?.stop();
});

interface Run { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

function runSeed(args: string[], onStart?: (child: ReturnType<typeof spawn>, stderr: () => string) => void): Promise<Run> {
	return new Promise((resolve, reject) => {
		const child = spawn(process.execPath, ["--import", "tsx", "scripts/seed.ts", "--url", mesh.url, "--key", mesh.adminKey, ...args], {
			cwd: process.cwd(), stdio: ["ignore", "pipe", "pipe"]
		});
		let stdout = "";
		let stderr = "";
		child.stdout!.on("data", d => (stdout += d));
		child.stderr!.on("data", d => (stderr += d));
		const timer = setTimeout(() => child.kill("SIGKILL"), 90_000);
		child.on("error", reject);
		child.on("exit", (code, signal) => {
			clearTimeout(timer);
			resolve({ code, signal, stdout, stderr });
		});
		onStart?.(child, () => stderr);
	});
}

const SEED = 42;
const PERSONS = 5;
const people = Array.from({ length: PERSONS }, (_, i) => generatePerson(SEED, i));

async function counts() {
	const out: { debts: number; movements: number }[] = [];
	for (const p of people) {
		const a = await api(mesh, "GET", `/api/v1/persons/${p.cpf}`);
		expect(a.status).toBe(200);
		const m = await api(mesh, "GET", `/api/v1/activity/${p.cpf}/movements?size=1`);
		expect(m.status).toBe(200);
		out.push({ debts: a.body.dividas.length, movements: m.body.total });
	}
	return out;
}

describe("scripts/seed.ts", () => {
	it("fills the three bases through the API, and a second run doubles nothing", async () => {
		const first = await runSeed(["--persons", String(PERSONS), "--seed", String(SEED)]);
		expect(first.code, first.stdout + first.stderr).toBe(0);
		expect(first.stdout).toMatch(/seed summary: 5\/5 persons done .*0 failed/);
		expect(first.stderr).toContain("5/5 100.0%");

		for (const p of people) {
			const a = await api(mesh, "GET", `/api/v1/persons/${p.cpf}`);
			expect(a.status).toBe(200);
			expect(a.body.nome).toBe(p.nome);
			const b = await api(mesh, "GET", `/api/v1/profiles/${p.cpf}`);
			expect(b.status).toBe(200);
			expect(b.body.dataNascimento).toBe(p.profile.dataNascimento);
			expect(b.body.bens).toHaveLength(p.profile.bens.length);
			// Base C is written asynchronously: wait for every movement (stable ids: exactly these, however often sent).
			const c = await eventually(() => api(mesh, "GET", `/api/v1/activity/${p.cpf}/movements?size=1`),
				r => r.status === 200 && r.body.total === p.movements.length, 30_000, 300);
			expect(c.body.total).toBe(p.movements.length);
		}
		const before = await counts();
		// Unless these persons were already there from a test run more than a day ago (409: debts skipped), the
		// debts are the generated ones.
		if (first.stdout.includes("(0 already there)")) expect(before.map(c => c.debts)).toEqual(people.map(p => p.dividas.length));

		const second = await runSeed(["--persons", String(PERSONS), "--seed", String(SEED), "--concurrency", "2"]);
		expect(second.code, second.stdout + second.stderr).toBe(0);
		await new Promise(r => setTimeout(r, 2000)); // would-be duplicates have time to land in Base C
		expect(await counts()).toEqual(before);
	}, 180_000);

	it("prints the CPFs it would seed, without traffic", async () => {
		const r = await runSeed(["--persons", "3", "--seed", String(SEED), "--print-cpfs"]);
		expect(r.code).toBe(0);
		expect(r.stdout.trim().split("\n")).toEqual(people.slice(0, 3).map(p => p.cpf));
	}, 60_000);

	it("on SIGINT finishes the persons in flight, prints the summary and exits 130", async () => {
		const r = await runSeed(["--persons", "200", "--seed", "4242", "--concurrency", "4"], (child, stderr) => {
			// Once the loader is running (its progress line is out), wait a second and interrupt it.
			const poll = setInterval(() => {
				if (stderr().includes("/200")) {
					clearInterval(poll);
					setTimeout(() => child.kill("SIGINT"), 1000);
				}
			}, 50);
			child.on("exit", () => clearInterval(poll));
		});
		expect(r.signal).toBeNull();
		expect(r.code, r.stdout + r.stderr).toBe(130);
		expect(r.stdout).toMatch(/seed summary: \d+\/200 persons done .* interrupted after \d+ persons/);
		expect(r.stderr).toContain("interrupted");
	}, 120_000);
});
