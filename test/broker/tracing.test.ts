import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import brokerConfig from "../../moleculer.config";
import { PRIVATE_ZIPKIN, tracingOptions, zipkinTraceId } from "../../broker/tracing";
import { formatCpf, randomCpf } from "../../lib/cpf";
import { api, eventually, startMesh, type Mesh } from "../support/mesh";

// Moleculer's spans exported as Zipkin's v2 JSON (broker/tracing.ts). Zipkin itself lies outside
// the system: a local HTTP sink stands in for its POST /api/v2/spans and keeps what it is sent.

interface ZipkinSpan { traceId: string; id: string; parentId?: string | null; name: string; localEndpoint: { serviceName: string | null }; tags: Record<string, string> }

describe("tracing options", () => {
	it("exports nowhere unless ZIPKIN_URL is set (the test environment sets none)", () => {
		expect(process.env.ZIPKIN_URL).toBeUndefined();
		expect((brokerConfig.tracing as any).exporter).toEqual([]);
		expect(tracingOptions(undefined).exporter).toEqual([]);
		expect(tracingOptions("http://zipkin:9411/").exporter).toEqual([{ type: PRIVATE_ZIPKIN, options: { baseURL: "http://zipkin:9411", interval: 5 } }]);
		// The span endpoint given in full is taken as its base too.
		expect((tracingOptions("http://zipkin:9411/api/v2/spans").exporter as any)[0].options.baseURL).toBe("http://zipkin:9411");
	});

	it("never puts params, meta, responses or error data in spans", () => {
		const opts = tracingOptions("http://zipkin:9411") as any;
		expect(opts.tags.action).toEqual({ params: false, meta: false, response: false });
		expect(opts.tags.event).toEqual({ params: false, meta: false });
		expect(opts.errorFields).not.toContain("data");
	});

	it("the trace id is the request id: a UUID's 32 hex digits as they are, any other id's SHA-256 prefix", () => {
		expect(zipkinTraceId("3F2B8C1E-9A4D-4E6F-8B7A-1C2D3E4F5A6B")).toBe("3f2b8c1e9a4d4e6f8b7a1c2d3e4f5a6b");
		expect(zipkinTraceId("client-req-0001")).toBe(createHash("sha256").update("client-req-0001").digest("hex").slice(0, 32));
		expect(zipkinTraceId("client-req-0001")).toMatch(/^[0-9a-f]{32}$/);
	});
});

describe("spans of a real mesh, sent to a stand-in for Zipkin", () => {
	let mesh: Mesh;
	let sink: Server;
	const received: ZipkinSpan[] = [];
	const bodies: string[] = [];
	const cpf = randomCpf();
	const nome = "Rastreada Fagundes";
	const endereco = "Rua Rastro, 77";

	beforeAll(async () => {
		sink = createServer((req, res) => {
			let body = "";
			req.on("data", chunk => (body += chunk));
			req.on("end", () => {
				if (req.method === "POST" && req.url === "/api/v2/spans") {
					bodies.push(body);
					received.push(...(JSON.parse(body) as ZipkinSpan[]));
					res.statusCode = 202;
				} else res.statusCode = 404;
				res.end();
			});
		});
		await new Promise<void>(r => sink.listen(0, "127.0.0.1", r));
		const url = `http://127.0.0.1:${(sink.address() as AddressInfo).port}`;
		mesh = await startMesh(undefined, { broker: { tracing: tracingOptions(url, 1) } });
		expect((await api(mesh, "POST", "/api/v1/persons", { body: { cpf, nome, endereco } })).status).toBe(201);
	}, 60_000);

	afterAll(async () => {
		await mesh?.stop();
		await new Promise(r => sink?.close(r));
	});

	const trace = (traceId: string) => received.filter(s => s.traceId === traceId);

	it("a report crosses the groups in one trace whose id is the X-Request-Id the client got", async () => {
		const res = await api(mesh, "GET", `/api/v1/reports/${cpf}`);
		expect(res.status).toBe(200);
		const requestId = res.headers.get("x-request-id")!;
		expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
		const traceId = requestId.replace(/-/g, "");
		// The gateway, report, and the services of Bases A, B and C that report calls (each node sends its spans every second).
		const expected = ["api", "report", "cpf-lookup", "profiles", "activity"];
		const spans = await eventually(async () => trace(traceId), s => expected.every(name => s.some(x => x.localEndpoint.serviceName === name)), 20_000, 250);
		const services = new Set(spans.map(s => s.localEndpoint.serviceName));
		for (const name of expected) expect(services, [...services].join(",")).toContain(name);
		// One tree: every span but the root has its parent in the trace.
		const ids = new Set(spans.map(s => s.id));
		expect(spans.filter(s => !s.parentId).length).toBe(1);
		for (const s of spans.filter(x => x.parentId)) expect(ids.has(s.parentId!), s.name).toBe(true);
	}, 30_000);

	it("a client's own X-Request-Id: the trace id is its SHA-256 prefix", async () => {
		const requestId = `client-trace-${Date.now()}`;
		const res = await api(mesh, "GET", `/api/v1/persons/${cpf}`, { headers: { "x-request-id": requestId } });
		expect(res.status).toBe(200);
		expect(res.headers.get("x-request-id")).toBe(requestId);
		const spans = await eventually(async () => trace(zipkinTraceId(requestId)), s => ["api", "cpf-lookup"].every(n => s.some(x => x.localEndpoint.serviceName === n)), 20_000, 250);
		expect(spans.map(s => s.localEndpoint.serviceName)).toContain("api");
	}, 30_000);

	it("no span holds personal data: no CPF (bare or formatted), name or address, no params, meta or response tags", async () => {
		// A failed lookup too: error spans carry the error's name and code only.
		expect((await api(mesh, "GET", `/api/v1/persons/${randomCpf()}`)).status).toBe(404);
		await eventually(async () => received.filter(s => s.tags.error === "true" || s.tags["error.name"]), s => s.length > 0, 20_000, 250);
		const all = bodies.join("\n");
		expect(received.length).toBeGreaterThan(10);
		for (const secret of [cpf, formatCpf(cpf), nome, endereco, "Rastreada", "Rua Rastro"]) expect(all, secret).not.toContain(secret);
		expect(all).not.toMatch(/(?<!\d)\d{11}(?!\d)/);
		expect(received.some(s => s.localEndpoint.serviceName === "api" && !s.parentId)).toBe(true);
		for (const span of received) {
			for (const key of Object.keys(span.tags)) expect(key, span.name).not.toMatch(/^(params|meta|response|error\.data)(\.|$)/);
			// The gateway's span is named by method only, never by its URL.
			if (span.localEndpoint.serviceName === "api" && !span.parentId) expect(span.name).toMatch(/^HTTP [A-Z]+$/);
		}
	}, 30_000);
});
