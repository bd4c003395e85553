import { describe, expect, it } from "vitest";
import { allowedMethods, API_PREFIX, ROUTES, routeTemplate } from "../../../lib/gateway/routes";
import { SCOPES } from "../../../lib/scopes";

const route = (action: string) => ROUTES.find(r => r.action === action)!;

describe("ROUTES", () => {
	it("has one route per method and path, and one per action", () => {
		const keys = ROUTES.map(r => `${r.method} ${r.path}`);
		expect(new Set(keys).size).toBe(keys.length);
		expect(new Set(ROUTES.map(r => r.action)).size).toBe(ROUTES.length);
	});

	it("guards every route with a known scope, and names its action service.action", () => {
		for (const r of ROUTES) {
			expect(SCOPES, `${r.method} ${r.path}`).toContain(r.scope);
			expect(r.action).toMatch(/^[a-z-]+\.[a-zA-Z]+$/);
			expect(r.path.startsWith("/")).toBe(true);
			expect(r.path.startsWith(API_PREFIX)).toBe(false);
		}
	});

	it("gives a Location only to routes that create, with names the answer or the path can fill", () => {
		for (const r of ROUTES.filter(x => x.location)) {
			expect([r.status, ...(r.alsoStatus ?? [])], r.action).toContain(201);
			for (const [, name] of r.location!.matchAll(/:(\w+)/g)) expect(["cpf", "id"], r.action).toContain(name);
		}
	});

	it("decides the statuses that depend on the answer", () => {
		expect(route("profiles.put").statusOf!({}, { created: true })).toBe(201);
		expect(route("profiles.put").statusOf!({}, {})).toBe(200);
		expect(route("privacy.erase").statusOf!({ status: "pending" }, {})).toBe(202);
		expect(route("privacy.erase").statusOf!({ status: "erased" }, {})).toBe(200);
	});

	it("shows a new API key or webhook secret once: neither is part of a stored answer", () => {
		expect(route("consumers.create").shownOnce).toEqual(["key"]);
		expect(route("monitoring.subscribe").shownOnce).toEqual(["secret"]);
		expect(ROUTES.filter(r => r.shownOnce).map(r => r.action)).toEqual(["consumers.create", "monitoring.subscribe"]);
	});

	it("takes NDJSON only where movements or a batch of CPFs come in", () => {
		expect(ROUTES.filter(r => r.accepts?.includes("application/x-ndjson")).map(r => r.action)).toEqual(["transaction-ingest.ingest", "report.batch", "credit-score.batch"]);
		expect(ROUTES.filter(r => r.rawBody).map(r => r.action)).toEqual(["transaction-ingest.ingest", "report.batch", "credit-score.batch"]);
	});
});

describe("allowedMethods", () => {
	it("lists every method a path serves, in the table's order", () => {
		expect(allowedMethods("/api/v1/persons")).toEqual(["POST"]);
		expect(allowedMethods("/api/v1/persons/52998224725")).toEqual(["PUT", "GET"]);
		expect(allowedMethods("/api/v1/privacy/52998224725")).toEqual(["GET", "DELETE"]);
		expect(allowedMethods("/api/v1/persons/52998224725/dividas/6f1c1f8e-4a53-4c1e-9a4e-0d1b2a3c4d5e")).toEqual(["PATCH"]);
		expect(allowedMethods("/api/v1/persons/52998224725/")).toEqual(["PUT", "GET"]);
	});

	it("names only the most literal route of a path: /scores/batch is POST's, not a CPF of GET /scores/:cpf (found by the fuzzer)", () => {
		expect(allowedMethods("/api/v1/scores/batch")).toEqual(["POST"]);
		expect(allowedMethods("/api/v1/scores/52998224725")).toEqual(["GET"]);
		expect(routeTemplate("/api/v1/scores/batch")).toBe("/api/v1/scores/batch");
		expect(routeTemplate("/api/v1/scores/52998224725")).toBe("/api/v1/scores/:cpf");
		expect(allowedMethods("/api/v1/reports/batch")).toEqual(["POST"]);
		expect(allowedMethods("/api/v1/reports/52998224725")).toEqual(["GET"]);
		expect(routeTemplate("/api/v1/reports/batch")).toBe("/api/v1/reports/batch");
	});

	it("knows the gateway's own paths outside the prefix", () => {
		for (const path of ["/health/live", "/health/ready", "/metrics", "/openapi.json", "/docs", "/docs/"]) expect(allowedMethods(path), path).toEqual(["GET"]);
	});

	it("knows nothing else: a parameter never spans segments, a dot is a dot", () => {
		for (const path of ["/api/v1/nothing", "/api/v1/persons/a/b", "/api/v1/audit/append", "/api/v1/consumers/x/y", "/openapiXjson", "/persons", "/api/v2/persons", "/health"]) {
			expect(allowedMethods(path), path).toEqual([]);
		}
		// The path of PATCH and DELETE /consumers/:id: known, so a POST to it is a 405, never an internal action.
		expect(allowedMethods("/api/v1/consumers/authenticate")).toEqual(["PATCH", "DELETE"]);
	});
});

describe("routeTemplate (the `route` label of the gateway's metrics)", () => {
	it("names a path by its route, never by what is in it", () => {
		expect(routeTemplate("/api/v1/persons/52998224725")).toBe("/api/v1/persons/:cpf");
		expect(routeTemplate("/api/v1/persons/529.982.247-25/dividas")).toBe("/api/v1/persons/:cpf/dividas");
		expect(routeTemplate("/metrics")).toBe("/metrics");
		expect(routeTemplate("/docs/")).toBe("/docs");
		expect(routeTemplate("/docs/swagger-ui.css")).toBe("/docs/*");
		expect(routeTemplate("/api/v1/52998224725")).toBe("other");
		for (const r of ROUTES) expect(routeTemplate(`${API_PREFIX}${r.path.replace(/:\w+/g, "52998224725")}`)).toBe(`${API_PREFIX}${r.path}`);
	});
});
