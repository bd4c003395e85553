import { type ChildProcess, spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tracingOptions, zipkinTraceId } from "../../broker/tracing";
import { formatCpf, randomCpf } from "../../lib/cpf";
import { api, eventually, startMesh, type Mesh } from "../support/mesh";
import { freePort } from "../support/prometheus";

// The real tracing backend: Zipkin's server (scripts/zipkin.sh: Maven Central's jar, in memory, on
// loopback), fed by a real mesh through broker/tracing.ts, read back through Zipkin's own query API.

interface ZipkinSpan { traceId: string; id: string; parentId?: string; name?: string; localEndpoint?: { serviceName?: string }; tags?: Record<string, string> }

describe("traces in a real Zipkin", () => {
	let zipkin: ChildProcess;
	let zipkinUrl: string;
	let mesh: Mesh;
	const cpf = randomCpf();
	const nome = "Zipkin Rastreada";

	beforeAll(async () => {
		const port = await freePort();
		zipkinUrl = `http://127.0.0.1:${port}`;
		zipkin = spawn("bash", ["scripts/zipkin.sh", "run", String(port)], { stdio: ["ignore", "ignore", "pipe"] });
		let log = "";
		zipkin.stderr!.on("data", chunk => (log = (log + chunk).slice(-4000)));
		const health = await eventually(
			() => fetch(`${zipkinUrl}/health`).then(r => r.json() as Promise<{ status?: string }>, () => ({ status: zipkin.exitCode === null ? "starting" : "exited" })),
			h => h.status !== "starting", 150_000, 500
		);
		expect(health.status, log).toBe("UP");
		mesh = await startMesh(undefined, { broker: { tracing: tracingOptions(zipkinUrl, 1) } });
		expect((await api(mesh, "POST", "/api/v1/persons", { body: { cpf, nome, endereco: "Rua Zipkin, 9" } })).status).toBe(201);
	}, 240_000);

	afterAll(async () => {
		await mesh?.stop();
		if (zipkin && zipkin.exitCode === null) {
			const exited = new Promise(r => zipkin.once("exit", r));
			zipkin.kill("SIGTERM");
			await exited;
		}
	}, 60_000);

	/** A trace as Zipkin answers GET /api/v2/trace/{id} (404 until it has one). */
	const trace = async (traceId: string): Promise<ZipkinSpan[]> => {
		const res = await fetch(`${zipkinUrl}/api/v2/trace/${traceId}`);
		return res.ok ? ((await res.json()) as ZipkinSpan[]) : [];
	};

	it("a report's trace, found in Zipkin by the X-Request-Id without its dashes, spans the gateway, report and the three bases' services", async () => {
		const res = await api(mesh, "GET", `/api/v1/reports/${cpf}`);
		expect(res.status).toBe(200);
		const traceId = res.headers.get("x-request-id")!.replace(/-/g, "");
		const expected = ["api", "report", "cpf-lookup", "profiles", "activity"];
		const spans = await eventually(() => trace(traceId), s => expected.every(n => s.some(x => x.localEndpoint?.serviceName === n)), 30_000, 500);
		const services = new Set(spans.map(s => s.localEndpoint?.serviceName));
		for (const name of expected) expect(services, [...services].join(",")).toContain(name);
		expect(spans.every(s => s.traceId === traceId)).toBe(true);
		// Zipkin lists the services it has heard of.
		const listed = (await (await fetch(`${zipkinUrl}/api/v2/services`)).json()) as string[];
		expect(listed).toEqual(expect.arrayContaining(expected));
	}, 60_000);

	it("a client's own X-Request-Id: its trace is under the id's SHA-256 prefix, and holds no personal data", async () => {
		const requestId = `zipkin-client-${Date.now()}`;
		expect((await api(mesh, "GET", `/api/v1/persons/${cpf}`, { headers: { "x-request-id": requestId } })).status).toBe(200);
		const spans = await eventually(() => trace(zipkinTraceId(requestId)), s => ["api", "cpf-lookup"].every(n => s.some(x => x.localEndpoint?.serviceName === n)), 30_000, 500);
		const stored = JSON.stringify(spans);
		for (const secret of [cpf, formatCpf(cpf), nome, "Rua Zipkin"]) expect(stored, secret).not.toContain(secret);
		for (const span of spans) for (const key of Object.keys(span.tags ?? {})) expect(key).not.toMatch(/^(params|meta|response)(\.|$)/);
	}, 60_000);
});
