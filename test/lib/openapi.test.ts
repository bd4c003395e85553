import { describe, it, expect } from "vitest";
import { Utils } from "moleculer";
import { buildOpenApi, fvToJsonSchema, paramsSchema, type OpenApiInput, type RouteSpec } from "../../lib/openapi";
import { PURPOSE_CODES } from "../../lib/purposes";
import { swaggerUiHtml } from "../../lib/swagger-ui";

const CPF = {
	type: "string",
	format: "cpf",
	description: "CPF: 11 digits or 000.000.000-00, valid check digits",
	pattern: "^(\\d{11}|\\d{3}\\.\\d{3}\\.\\d{3}-\\d{2})$",
	examples: ["52998224725"],
};

describe("fvToJsonSchema", () => {
	it("parses shorthands", () => {
		expect(fvToJsonSchema("string")).toEqual({ type: "string" });
		expect(fvToJsonSchema("string|optional")).toEqual({ type: "string" });
		expect(fvToJsonSchema("number|min:0")).toEqual({ type: "number", minimum: 0 });
		expect(fvToJsonSchema("number|integer|positive")).toEqual({ type: "integer", exclusiveMinimum: 0 });
		expect(fvToJsonSchema("boolean|optional")).toEqual({ type: "boolean" });
		expect(fvToJsonSchema("string|min:3|max:10|no-empty")).toEqual({ type: "string", minLength: 3, maxLength: 10 });
		expect(fvToJsonSchema("string[]")).toEqual({ type: "array", items: { type: "string" } });
		expect(fvToJsonSchema("cpf|optional")).toEqual(CPF);
	});

	it("maps strings", () => {
		expect(fvToJsonSchema({ type: "string", min: 2, max: 5, trim: true })).toEqual({ type: "string", minLength: 2, maxLength: 5 });
		expect(fvToJsonSchema({ type: "string", length: 8 })).toEqual({ type: "string", minLength: 8, maxLength: 8 });
		expect(fvToJsonSchema({ type: "string", pattern: /^[a-z]+$/i })).toEqual({ type: "string", pattern: "^[a-z]+$" });
		expect(fvToJsonSchema({ type: "string", pattern: "^\\d+$" })).toEqual({ type: "string", pattern: "^\\d+$" });
		expect(fvToJsonSchema({ type: "string", enum: ["a", "b"] })).toEqual({ type: "string", enum: ["a", "b"] });
		expect(fvToJsonSchema({ type: "string", empty: false })).toEqual({ type: "string", minLength: 1 });
	});

	it("maps numbers and booleans", () => {
		expect(fvToJsonSchema({ type: "number", min: 1, max: 9, convert: true })).toEqual({ type: "number", minimum: 1, maximum: 9 });
		expect(fvToJsonSchema({ type: "number", integer: true })).toEqual({ type: "integer" });
		expect(fvToJsonSchema({ type: "number", positive: true })).toEqual({ type: "number", exclusiveMinimum: 0 });
		expect(fvToJsonSchema({ type: "boolean" })).toEqual({ type: "boolean" });
	});

	it("maps arrays", () => {
		expect(fvToJsonSchema({ type: "array", items: "number", min: 1, max: 3 })).toEqual({
			type: "array",
			items: { type: "number" },
			minItems: 1,
			maxItems: 3,
		});
		expect(fvToJsonSchema({ type: "array", items: "string", enum: ["x", "y"] })).toEqual({
			type: "array",
			items: { type: "string", enum: ["x", "y"] },
		});
		expect(fvToJsonSchema({ type: "array" })).toEqual({ type: "array" });
		// An enum on the items themselves survives (it was lost once: every scope list read as any string).
		expect(fvToJsonSchema({ type: "array", items: { type: "enum", values: ["a", "b"] } })).toEqual({
			type: "array",
			items: { type: "string", enum: ["a", "b"] },
		});
	});

	it("maps objects, including strictness and nested required lists", () => {
		expect(fvToJsonSchema({ type: "object", strict: true, props: { a: "string", b: "number|optional" } })).toEqual({
			type: "object",
			properties: { a: { type: "string" }, b: { type: "number" } },
			required: ["a"],
			additionalProperties: false,
		});
		expect(fvToJsonSchema({ type: "object", properties: { $$strict: "remove", a: "string|optional" } })).toEqual({
			type: "object",
			properties: { a: { type: "string" } },
			additionalProperties: false,
		});
		expect(fvToJsonSchema({ $$type: "object|optional", city: "string" })).toEqual({
			type: "object",
			properties: { city: { type: "string" } },
			required: ["city"],
		});
		expect(fvToJsonSchema({ type: "object" })).toEqual({ type: "object" });
	});

	it("maps enum, equal, any and string formats", () => {
		expect(fvToJsonSchema({ type: "enum", values: ["PF", "PJ"] })).toEqual({ type: "string", enum: ["PF", "PJ"] });
		expect(fvToJsonSchema({ type: "enum", values: [1, "a"] })).toEqual({ enum: [1, "a"] });
		expect(fvToJsonSchema({ type: "equal", value: true })).toEqual({ const: true });
		expect(fvToJsonSchema({ type: "any" })).toEqual({});
		expect(fvToJsonSchema("uuid")).toEqual({ type: "string", format: "uuid" });
		expect(fvToJsonSchema("email")).toEqual({ type: "string", format: "email" });
		expect(fvToJsonSchema("url")).toEqual({ type: "string", format: "uri" });
	});

	it("handles nullable, default, description, multi and unknown types", () => {
		expect(fvToJsonSchema({ type: "string", nullable: true })).toEqual({ type: ["string", "null"] });
		expect(fvToJsonSchema({ type: "enum", values: ["a"], nullable: true })).toEqual({ type: ["string", "null"], enum: ["a", null] });
		expect(fvToJsonSchema({ type: "equal", value: 1, nullable: true })).toEqual({ oneOf: [{ const: 1 }, { type: "null" }] });
		expect(fvToJsonSchema({ type: "number", default: 10, description: "page size" })).toEqual({
			type: "number",
			default: 10,
			description: "page size",
		});
		expect(fvToJsonSchema({ type: "string", default: () => "x" })).toEqual({ type: "string" });
		expect(fvToJsonSchema({ type: "multi", rules: ["string", "number"] })).toEqual({ oneOf: [{ type: "string" }, { type: "number" }] });
		expect(fvToJsonSchema(["string", { type: "boolean" }])).toEqual({ oneOf: [{ type: "string" }, { type: "boolean" }] });
		expect(fvToJsonSchema({ type: "luhn" })).toEqual({});
		expect(fvToJsonSchema({ type: "somethingElse", min: 1 })).toEqual({});
		expect(fvToJsonSchema(undefined)).toEqual({});
		expect(fvToJsonSchema(42)).toEqual({});
	});

	it("maps our custom types, letting a rule override them", () => {
		expect(fvToJsonSchema("cpf")).toEqual(CPF);
		const date = fvToJsonSchema({ type: "date" });
		expect(date).toMatchObject({ type: "string", format: "date-br", examples: ["15/03/2024"] });
		const datePattern = new RegExp(date.pattern);
		for (const ok of ["15/03/2024", "2024-03-15", "31/12/1900", "01/01/2199"]) expect(datePattern.test(ok), ok).toBe(true);
		for (const bad of ["90/04/6106", "13/13/2024", "00/01/2024", "15/03/1899", "2024-3-15", "2200-01-01"]) expect(datePattern.test(bad), bad).toBe(false);
		expect(fvToJsonSchema("money")).toEqual({ type: "number", minimum: 0, maximum: 100_000_000_000, multipleOf: 0.01, description: "amount in BRL, at most two decimals" });
		expect(fvToJsonSchema({ type: "money", description: "debt amount" }).description).toBe("debt amount");
		expect(fvToJsonSchema({ type: "cpf", nullable: true }).type).toEqual(["string", "null"]);
		// The custom definitions are not shared/mutated between calls.
		expect(fvToJsonSchema("cpf")).toEqual(CPF);
	});

	it("merges the `openapi` escape hatch over the generated schema", () => {
		expect(fvToJsonSchema({ type: "string", max: 8, openapi: { format: "date-time", examples: ["x"] } })).toEqual({
			type: "string",
			maxLength: 8,
			format: "date-time",
			examples: ["x"],
		});
	});
});

const schemasOf = (params: Record<string, Record<string, unknown> | undefined>) =>
	Object.fromEntries(Object.entries(params).map(([action, p]) => [action, p && paramsSchema(p)]));

const route = (r: Partial<RouteSpec> & Pick<RouteSpec, "method" | "path" | "action">): RouteSpec => ({
	scope: "persons:read",
	status: 200,
	summary: "s",
	tag: "Base A",
	response: { type: "object" },
	...r,
});

const input: OpenApiInput = {
	title: "credit-mesh",
	version: "1.0.0",
	description: "Brazilian credit data",
	prefix: "/api/v1",
	routes: [
		route({ method: "GET", path: "/persons/:cpf", action: "cpf-lookup.get", consultation: true }),
		route({ method: "GET", path: "/persons/:cpf/dividas/:id", action: "dividas.get" }),
		route({ method: "GET", path: "/dividas", action: "dividas.list", tag: "Base B" }),
		route({
			method: "POST",
			path: "/persons/:cpf/dividas",
			action: "dividas.create",
			scope: "dividas:write",
			status: 201,
			idempotent: true,
		}),
		route({ method: "DELETE", path: "/persons/:cpf", action: "persons.remove", status: 204, response: undefined }),
		route({ method: "PUT", path: "/consumers/:id", action: "consumers.upsert", scope: "admin" }),
		route({ method: "PATCH", path: "/consumers/:id", action: "consumers.upsert", scope: "admin" }),
		route({ method: "GET", path: "/export", action: "export.stream", responseContentType: "application/x-ndjson", response: undefined }),
		route({ method: "GET", path: "/ping", action: "ping" }),
	],
	actionSchemas: schemasOf({
		"cpf-lookup.get": { cpf: "cpf" },
		"dividas.get": { cpf: "cpf", id: { type: "number", integer: true, positive: true, convert: true } },
		"dividas.list": { $$strict: true, page: "number|optional|integer|min:1", status: { type: "enum", values: ["open", "paid"] } },
		"dividas.create": {
			$$strict: true,
			cpf: "cpf",
			amount: "money",
			dueDate: { type: "date" },
			creditor: "string|min:1|max:120",
			note: "string|optional",
			currency: { type: "string", default: "BRL" },
		},
		"persons.remove": { cpf: "cpf" },
		"consumers.upsert": { id: "string", name: "string" },
		"export.stream": undefined,
	}),

	extraPaths: {
		"/health/live": { get: { summary: "Liveness", responses: { "200": { description: "alive" } } } },
	},
};

describe("buildOpenApi", () => {
	const doc = buildOpenApi(input);
	const op = (path: string, method: string) => doc.paths[path][method];
	const names = (o: any, where: string) => o.parameters.filter((p: any) => p.in === where).map((p: any) => p.name);

	it("fills the top-level fields and components", () => {
		expect(doc.openapi).toBe("3.1.0");
		expect(doc.info).toEqual({ title: "credit-mesh", version: "1.0.0", description: "Brazilian credit data" });
		expect(doc.servers).toEqual([{ url: "/" }]);
		expect(doc.tags).toEqual([{ name: "Base A" }, { name: "Base B" }]);
		expect(doc.components.securitySchemes.bearerAuth).toEqual({
			type: "http",
			scheme: "bearer",
			description: "API key issued by POST /api/v1/consumers",
		});
		expect(doc.components.schemas.Error.required).toEqual(["name", "message", "code"]);
		expect(Object.keys(doc.components.responses)).toHaveLength(10);
		expect(doc.paths["/health/live"]).toEqual(input.extraPaths!["/health/live"]);
	});

	it("converts path params and takes their schema from the action params", () => {
		expect(Object.keys(doc.paths)).toContain("/api/v1/persons/{cpf}/dividas/{id}");
		const o = op("/api/v1/persons/{cpf}/dividas/{id}", "get");
		expect(o.parameters).toEqual([
			{ name: "cpf", in: "path", required: true, schema: CPF },
			{ name: "id", in: "path", required: true, schema: { type: "integer", exclusiveMinimum: 0 } },
		]);
		expect(o.requestBody).toBeUndefined();
	});

	it("puts the remaining GET params in the query, required unless optional", () => {
		const o = op("/api/v1/dividas", "get");
		expect(o.parameters).toEqual([
			{ name: "page", in: "query", required: false, schema: { type: "integer", minimum: 1 } },
			{ name: "status", in: "query", required: true, schema: { type: "string", enum: ["open", "paid"] } },
		]);
	});

	it("puts the remaining POST params in a strict JSON body", () => {
		const o = op("/api/v1/persons/{cpf}/dividas", "post");
		expect(names(o, "path")).toEqual(["cpf"]);
		expect(names(o, "query")).toEqual([]);
		expect(o.requestBody.required).toBe(true);
		const body = o.requestBody.content["application/json"].schema;
		expect(Object.keys(body.properties)).toEqual(["amount", "dueDate", "creditor", "note", "currency"]);
		expect(body.required).toEqual(["amount", "dueDate", "creditor"]);
		expect(body.additionalProperties).toBe(false);
		expect(body.properties.currency).toEqual({ type: "string", default: "BRL" });
	});

	it("leaves non-strict bodies open", () => {
		const body = op("/api/v1/consumers/{id}", "put").requestBody.content["application/json"].schema;
		expect(body).toEqual({ type: "object", properties: { name: { type: "string" } }, required: ["name"] });
	});

	it("describes security and scope on every operation", () => {
		const o = op("/api/v1/persons/{cpf}", "get");
		expect(o).toMatchObject({
			operationId: "cpfLookupGet",
			summary: "s",
			tags: ["Base A"],
			security: [{ bearerAuth: [] }],
			"x-scope": "persons:read",
		});
		expect(o.description).toContain("Requires scope `persons:read`.");
		expect(op("/api/v1/persons/{cpf}/dividas", "post")["x-scope"]).toBe("dividas:write");
	});

	it("lists the error responses each method can produce", () => {
		const codes = (o: any) => Object.keys(o.responses);
		expect(codes(op("/api/v1/persons/{cpf}", "get"))).toEqual(["200", "400", "401", "403", "404", "422", "429", "503"]);
		expect(codes(op("/api/v1/dividas", "get"))).toEqual(["200", "400", "401", "403", "422", "429", "503"]);
		expect(codes(op("/api/v1/ping", "get"))).toEqual(["200", "401", "403", "429", "503"]);
		expect(codes(op("/api/v1/persons/{cpf}/dividas", "post"))).toEqual(
			["201", "400", "401", "403", "404", "409", "413", "415", "422", "429", "503"],
		);
		expect(op("/api/v1/persons/{cpf}", "get").responses["404"]).toEqual({ $ref: "#/components/responses/NotFound" });
		expect(op("/api/v1/persons/{cpf}", "get").responses["422"]).toEqual({ $ref: "#/components/responses/ValidationError" });
	});

	it("describes success bodies, content types and 204s", () => {
		const ok = op("/api/v1/persons/{cpf}", "get").responses["200"];
		expect(ok.content).toEqual({ "application/json": { schema: { type: "object" } } });
		expect(ok.headers["X-Request-Id"]).toBeDefined();
		expect(op("/api/v1/persons/{cpf}", "delete").responses["204"].content).toBeUndefined();
		expect(Object.keys(op("/api/v1/export", "get").responses["200"].content)).toEqual(["application/x-ndjson"]);
	});

	it("declares X-Request-Id on all error responses and Retry-After on 429/503", () => {
		for (const [name, r] of Object.entries<any>(doc.components.responses)) {
			expect(r.headers["X-Request-Id"], name).toBeDefined();
			expect(r.content["application/json"].schema).toEqual({ $ref: "#/components/schemas/Error" });
			const retry = name === "TooManyRequests" || name === "ServiceUnavailable";
			expect("Retry-After" in r.headers, name).toBe(retry);
		}
		expect(doc.components.headers.RetryAfter.schema.type).toBe("integer");
	});

	it("keeps `openapi: false` fields out and merges a route's body rules", () => {
		const small = buildOpenApi({
			...input,
			routes: [route({ method: "PUT", path: "/persons/:cpf", action: "persons.update", alsoStatus: [201], body: { anyOf: [{ required: ["nome"] }, { required: ["endereco"] }], required: ["motivo"] } })],
			actionSchemas: schemasOf({ "persons.update": { $$strict: true, cpf: "cpf", nome: "string|optional", endereco: "string|optional", motivo: "string", idade: { type: "number", optional: true, openapi: false } } }),
		});
		const schema = small.paths["/api/v1/persons/{cpf}"].put.requestBody.content["application/json"].schema;
		expect(Object.keys(schema.properties)).toEqual(["nome", "endereco", "motivo"]);
		expect(schema.additionalProperties).toBe(false);
		expect(schema.required).toEqual(["motivo"]);
		expect(schema.anyOf).toEqual([{ required: ["nome"] }, { required: ["endereco"] }]);
		// An upsert documents both of its success statuses, with the same body.
		const responses = small.paths["/api/v1/persons/{cpf}"].put.responses;
		expect(responses["201"]).toMatchObject({ description: "Created", content: responses["200"].content });
	});

	it("documents the same parameters when the action's schema crossed the transporter", () => {
		// A rule used twice and a RegExp: moleculer's safetyObject (the registry's JSON) drops the one and empties the other.
		const nome = { type: "string", pattern: /^\p{L}+$/u };
		const params = { $$strict: true, cpf: "cpf", nome, apelido: nome, nascimento: { type: "date" }, posse: { type: "date" } };
		const local = { ...input, actionSchemas: schemasOf({ "persons.remove": params }) };
		const remote = { ...input, actionSchemas: Utils.safetyObject(local.actionSchemas, {}) };
		expect(buildOpenApi(remote)).toEqual(buildOpenApi(local));
		const body = buildOpenApi(remote).paths["/api/v1/persons/{cpf}"].delete;
		expect(body.parameters.find((p: any) => p.name === "apelido").schema.pattern).toBe("^\\p{L}+$");
		// What the gateway used to read: the FV params themselves, after the trip.
		expect(Utils.safetyObject(params, {})).not.toHaveProperty("apelido");
	});

	it("declares links between operations by route, and refuses a link to no route", () => {
		const withLinks = (to: string) => buildOpenApi({
			...input,
			routes: [
				route({ method: "POST", path: "/persons", action: "persons.create", status: 201, links: { Read: { to, parameters: { cpf: "$response.body#/cpf" } } } }),
				route({ method: "GET", path: "/persons/:cpf", action: "cpf-lookup.get" }),
			],
		});
		expect(withLinks("GET /persons/:cpf").paths["/api/v1/persons"].post.responses["201"].links).toEqual({
			Read: { operationId: "cpfLookupGet", parameters: { cpf: "$response.body#/cpf" } },
		});
		expect(() => withLinks("GET /people/:cpf")).toThrow(/names no route/);
	});

	it("adds the Idempotency-Key header only to idempotent routes", () => {
		const header = op("/api/v1/persons/{cpf}/dividas", "post").parameters.find((p: any) => p.in === "header");
		expect(header).toMatchObject({ name: "Idempotency-Key", required: false, schema: { type: "string", pattern: "^[A-Za-z0-9._:-]{1,128}$", minLength: 1, maxLength: 128 } });
		expect(names(op("/api/v1/consumers/{id}", "put"), "header")).toEqual([]);
	});

	it("requires the Finalidade header, with the documented codes, on consultations only", () => {
		const consult = op("/api/v1/persons/{cpf}", "get");
		const header = consult.parameters.find((p: any) => p.in === "header");
		expect(header).toMatchObject({ name: "Finalidade", required: true, schema: { type: "string", enum: PURPOSE_CODES } });
		for (const code of PURPOSE_CODES) expect(header.description).toContain(`\`${code}\``);
		expect(Object.keys(consult.responses)).toEqual(expect.arrayContaining(["400", "403"]));
		expect(names(op("/api/v1/dividas", "get"), "header")).toEqual([]);
		expect(names(op("/api/v1/persons/{cpf}/dividas", "post"), "header")).toEqual(["Idempotency-Key"]);
	});

	it("keeps operationIds unique", () => {
		expect(op("/api/v1/consumers/{id}", "put").operationId).toBe("consumersUpsertPut");
		expect(op("/api/v1/consumers/{id}", "patch").operationId).toBe("consumersUpsertPatch");
		const ids = Object.values(doc.paths).flatMap((item) => Object.values(item).map((o: any) => o.operationId)).filter(Boolean);
		expect(new Set(ids).size).toBe(ids.length);
		const twice = buildOpenApi({
			...input,
			routes: [route({ method: "GET", path: "/a", action: "x.y" }), route({ method: "GET", path: "/b", action: "x.y" })],
		});
		expect([twice.paths["/api/v1/a"].get.operationId, twice.paths["/api/v1/b"].get.operationId]).toEqual(["xYGet", "xYGet2"]);
	});

	it("rejects a duplicate method + path", () => {
		const dup = route({ method: "GET", path: "/a", action: "x.y" });
		expect(() => buildOpenApi({ ...input, routes: [dup, dup] })).toThrow(/duplicate route GET \/api\/v1\/a/);
	});

	it("is a valid OpenAPI 3.1 document", async () => {
		const { Validator } = await import("@seriousme/openapi-schema-validator");
		const validator = new Validator();
		// Round-trip through JSON: that is what the gateway serves.
		const res = await validator.validate(JSON.parse(JSON.stringify(doc)));
		expect(res.errors).toBeUndefined();
		expect(res.valid).toBe(true);
		expect(validator.version).toBe("3.1");
	});
});

describe("swaggerUiHtml", () => {
	it("loads the assets and points Swagger UI at the spec", () => {
		const html = swaggerUiHtml({ specUrl: "/api/openapi.json", assetsPath: "/api/docs/assets/", title: "credit-mesh API" });
		expect(html).toContain('<link rel="stylesheet" href="/api/docs/assets/swagger-ui.css">');
		expect(html).toContain('<script src="/api/docs/assets/swagger-ui-bundle.js"></script>');
		expect(html).toContain('<script src="/api/docs/assets/swagger-ui-standalone-preset.js"></script>');
		expect(html).toContain('url: "/api/openapi.json"');
		expect(html).toContain('dom_id: "#swagger-ui"');
		expect(html).toContain("persistAuthorization: false");
		expect(html).toContain('layout: "StandaloneLayout"');
		expect(html).toContain("<title>credit-mesh API</title>");
	});

	it("escapes interpolated values", () => {
		const html = swaggerUiHtml({ specUrl: '"</script><script>alert(1)//', assetsPath: '/x"><b>', title: "<i>&" });
		expect(html).not.toContain("</script><script>alert");
		expect(html).not.toContain('"><b>');
		expect(html).toContain("<title>&lt;i&gt;&amp;</title>");
		expect(html).toContain('url: "\\"\\u003c/script\\u003e\\u003cscript\\u003ealert(1)//"');
	});
});
