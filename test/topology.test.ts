import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomCpf } from "../lib/cpf";
import { config } from "../config";
import { deleteStreams } from "./support/mesh";
import { freePort } from "./support/replicas";

// The production path: compiled JavaScript, moleculer-runner, one process per service group, over NATS.
const namespace = `test-topo-${randomBytes(3).toString("hex")}`;
const children: ChildProcess[] = [];
const lookups: ChildProcess[] = [];
let base = "";

function runner(services: string, port = 0): ChildProcess {
	const child = spawn(process.execPath, ["node_modules/moleculer/bin/moleculer-runner.js", "--config", "dist/moleculer.config.js"], {
		env: { ...process.env, NODE_ENV: "production", SERVICEDIR: "dist/services", SERVICES: services, NAMESPACE: namespace, PORT: String(port), LOG_LEVEL: "warn" },
		stdio: ["ignore", "ignore", "inherit"]
	});
	children.push(child);
	return child;
}

async function get(path: string, init: RequestInit = {}): Promise<Response | null> {
	return fetch(base + path, { ...init, headers: { authorization: `Bearer ${config.adminApiKey}`, "content-type": "application/json", finalidade: "concessao_credito", ...init.headers } }).catch(() => null);
}

async function until(path: string, status: number, ms = 30_000): Promise<Response | null> {
	const end = Date.now() + ms;
	let res = await get(path);
	while (res?.status !== status && Date.now() < end) {
		await new Promise(r => setTimeout(r, 300));
		res = await get(path);
	}
	return res;
}

// cpf-lookup runs apart, in two replicas, so one can be killed under load.
const BASE_A = "persons,debt-write,audit,consumers,idempotency";

beforeAll(async () => {
	execFileSync("npm", ["run", "--silent", "build"], { stdio: "inherit" });
	const port = await freePort();
	base = `http://127.0.0.1:${port}`;
	runner("api,report,privacy", port);
	runner(BASE_A);
	lookups.push(runner("cpf-lookup"), runner("cpf-lookup"));
	runner("profiles,asset-score,ml-export");
	runner("transaction-writer,activity");
	runner("transaction-ingest,activity-front");
}, 120_000);

afterAll(async () => {
	for (const c of children) c.kill("SIGKILL");
	// The namespace's JetStream streams would otherwise hold their storage reservation on the shared server.
	await deleteStreams(namespace);
});

describe("services as separate processes (moleculer-runner + SERVICES)", () => {
	it("serve the API together over NATS, and the gateway recovers when a service process comes back", async () => {
		expect((await until("/health/ready", 200))?.status).toBe(200);
		const cpf = randomCpf();
		const created = await get("/api/v1/persons", { method: "POST", body: JSON.stringify({ cpf, nome: "Processo Separado", endereco: "Rua J, 10" }) });
		expect(created?.status).toBe(201);
		expect((await get(`/api/v1/persons/${cpf}`))?.status).toBe(200);

		children[1].kill("SIGKILL");
		const gone = await until(`/api/v1/persons/${cpf}`, 503);
		expect(gone?.status).toBe(503);
		expect(gone?.headers.get("retry-after")).toBeTruthy();

		runner(BASE_A);
		const back = await until(`/api/v1/persons/${cpf}`, 200);
		expect(back?.status).toBe(200);
		expect(((await back!.json()) as any).nome).toBe("Processo Separado");
	}, 90_000);

	it("loses no request when one of two cpf-lookup replicas is killed under load", async () => {
		const cpfs: string[] = [];
		for (let i = 0; i < 20; i++) {
			const cpf = randomCpf();
			const res = await get("/api/v1/persons", { method: "POST", body: JSON.stringify({ cpf, nome: "Carga Constante", endereco: "Rua O, 15" }) });
			expect(res?.status).toBe(201);
			cpfs.push(cpf);
		}
		// Both replicas must be serving before the kill, or there is nothing to fail over to.
		expect((await until(`/api/v1/persons/${cpfs[0]}`, 200))?.status).toBe(200);

		const statuses = new Map<number, number>();
		let sent = 0;
		const until_ = Date.now() + 12_000;
		const client = async () => {
			while (Date.now() < until_ && sent < 5000) {
				const res = await get(`/api/v1/persons/${cpfs[sent++ % cpfs.length]}`);
				const status = res?.status ?? 0;
				statuses.set(status, (statuses.get(status) ?? 0) + 1);
			}
		};
		const load = Promise.all(Array.from({ length: 8 }, client));
		await new Promise(r => setTimeout(r, 3000));
		lookups[0].kill("SIGKILL");
		await load;

		console.log("lookups under a replica kill:", Object.fromEntries(statuses));
		expect([...statuses.keys()]).toEqual([200]);
		expect(statuses.get(200)).toBeGreaterThan(50);
	}, 90_000);
});
