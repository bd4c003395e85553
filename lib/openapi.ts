/**
 * Builds the gateway's OpenAPI 3.1 document from the route table and the actions'
 * fastest-validator (FV) `params`, so the API is described once, in code.
 * Pure: no I/O, no Moleculer import.
 */

import { MAX_CENTS } from "./money";
import { PURPOSES } from "./purposes";

export type HttpMethod = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
/** A JSON Schema 2020-12 object (the dialect OpenAPI 3.1 uses). */
export type JsonSchema = Record<string, any>;

export interface RouteSpec {
	method: HttpMethod;
	path: string; // relative to the prefix, Express style: "/persons/:cpf/dividas/:id"
	action: string; // Moleculer action name, e.g. "cpf-lookup.get"
	scope: string; // API-key scope required, e.g. "persons:read"
	status: number; // success status: 200, 201, 202, 204
	alsoStatus?: number[]; // other success statuses with the same body (201 for an upsert that created, 202 for pending)
	links?: Record<string, RouteLink>; // operations a success answer leads to (OpenAPI links: clients and fuzzers follow them)
	summary: string;
	tag: string;
	response?: JsonSchema; // success body schema; omit for 204
	responseContentType?: string; // default application/json
	idempotent?: boolean; // accepts an Idempotency-Key header
	consultation?: boolean; // a consultation of a CPF: requires the Finalidade header (docs/consultation-purpose.md)
	requestBody?: JsonSchema; // a verbatim OpenAPI requestBody, for bodies the params cannot describe (NDJSON…)
	body?: JsonSchema; // merged into the JSON body schema made from the params: rules across fields (anyOf, required…)
}

/** `to` names a route as "METHOD /path" of the table; parameters map its path names to runtime expressions. */
export interface RouteLink { to: string; parameters: Record<string, string> }

/** What the gateway accepts as an Idempotency-Key (it answers 400 otherwise). */
export const IDEMPOTENCY_KEY_PATTERN = "^[A-Za-z0-9._:-]{1,128}$";

export interface OpenApiInput {
	title: string;
	version: string;
	description?: string;
	prefix: string; // "/api/v1"
	routes: RouteSpec[];
	actionSchemas: Record<string, JsonSchema | undefined>; // action name -> paramsSchema(its FV params), as published
	extraPaths?: Record<string, unknown>; // verbatim path items (health, metrics…), merged over the generated ones
}

export interface OpenApiDocument {
	openapi: "3.1.0";
	info: { title: string; version: string; description?: string };
	servers: { url: string }[];
	tags: { name: string }[];
	paths: Record<string, Record<string, any>>;
	components: Record<string, Record<string, any>>;
}

type Rule = Record<string, any>;

// Our validator aliases; keep in sync with where they are registered.
const CUSTOM_TYPES: Record<string, JsonSchema> = {
	cpf: {
		type: "string",
		// "cpf" names what a pattern cannot say (the check digits); the fuzzer's hooks generate valid ones.
		format: "cpf",
		description: "CPF: 11 digits or 000.000.000-00, valid check digits",
		pattern: "^(\\d{11}|\\d{3}\\.\\d{3}\\.\\d{3}-\\d{2})$",
		examples: ["52998224725"],
	},
	date: {
		type: "string",
		// "date-br": a real calendar date (no 30/02), years 1900–2199, which a pattern cannot fully say.
		format: "date-br",
		description: "A real date, DD/MM/YYYY or YYYY-MM-DD, years 1900–2199",
		pattern: "^((0[1-9]|[12]\\d|3[01])/(0[1-9]|1[0-2])/(19|2[01])\\d{2}|(19|2[01])\\d{2}-(0[1-9]|1[0-2])-(0[1-9]|[12]\\d|3[01]))$",
		examples: ["15/03/2024"],
	},
	money: { type: "number", minimum: 0, maximum: MAX_CENTS / 100, multipleOf: 0.01, description: "amount in BRL, at most two decimals" },
};

/** Expands FV shorthands ("number|min:0", "string[]", [rules], {$$type}) into a rule object, as FV does. */
function normalize(rule: unknown): Rule | undefined {
	if (typeof rule === "string") {
		const [type, ...flags] = rule.split("|").map((s) => s.trim());
		const out: Rule = type.endsWith("[]") ? { type: "array", items: type.slice(0, -2) } : { type };
		for (const flag of flags) {
			const i = flag.indexOf(":");
			if (i === -1) out[flag.startsWith("no-") ? flag.slice(3) : flag] = !flag.startsWith("no-");
			else {
				const raw = flag.slice(i + 1).trim();
				const num = Number(raw);
				out[flag.slice(0, i).trim()] = raw === "true" ? true : raw === "false" ? false : raw !== "" && !Number.isNaN(num) ? num : raw;
			}
		}
		return out;
	}
	if (Array.isArray(rule)) {
		return { type: "multi", rules: rule, optional: rule.length > 0 && rule.every((r) => normalize(r)?.optional === true) };
	}
	if (rule && typeof rule === "object") {
		const { $$type, ...props } = rule as Rule;
		return $$type === undefined ? (rule as Rule) : { ...normalize($$type), props };
	}
	return undefined;
}

/** Not listed in `required`: FV skips a missing value when optional, or fills in its default. */
function isOptional(rule: unknown): boolean {
	const r = normalize(rule);
	return !r || r.optional === true || r.default !== undefined || r.type === "forbidden";
}

const isStrict = (v: unknown) => v === true || v === "remove";

/** An object schema from FV props; also used for request bodies. */
function objectSchema(props: Record<string, unknown>, strict: boolean): JsonSchema {
	const properties: Record<string, JsonSchema> = {};
	const required: string[] = [];
	for (const [key, rule] of Object.entries(props)) {
		// `openapi: false` keeps a tolerated field (an alias, a derived value) out of the document.
		if (key.startsWith("$$") || normalize(rule)?.openapi === false) continue;
		properties[key] = fvToJsonSchema(rule);
		if (!isOptional(rule)) required.push(key);
	}
	const out: JsonSchema = { type: "object", properties };
	if (required.length) out.required = required;
	if (strict || isStrict(props.$$strict)) out.additionalProperties = false;
	return out;
}

// Drops undefined keys so that generated schemas stay minimal.
const clean = (o: JsonSchema): JsonSchema => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
const num = (v: unknown) => (typeof v === "number" ? v : undefined);
const list = (v: unknown) => (Array.isArray(v) ? v : undefined);
const lengths = (r: Rule, min: string, max: string) => ({ [min]: num(r.min) ?? num(r.length), [max]: num(r.max) ?? num(r.length) });

const TYPES: Record<string, (r: Rule) => JsonSchema> = {
	string: (r) => clean({
		type: "string",
		...lengths(r, "minLength", "maxLength"),
		...(r.empty === false && !r.min && !r.length ? { minLength: 1 } : {}),
		// FV hands a string pattern to `new RegExp()`, so it already is the bare source.
		pattern: r.pattern instanceof RegExp ? r.pattern.source : typeof r.pattern === "string" ? r.pattern : undefined,
		enum: list(r.enum),
	}),
	number: (r) => clean({
		type: r.integer ? "integer" : "number",
		minimum: num(r.min),
		maximum: num(r.max),
		exclusiveMinimum: r.positive ? 0 : undefined,
		exclusiveMaximum: r.negative ? 0 : undefined,
	}),
	boolean: () => ({ type: "boolean" }),
	array: (r) => clean({
		type: "array",
		// FV's array `enum` constrains every element.
		items: r.items !== undefined || r.enum ? (r.enum ? { ...fvToJsonSchema(r.items), enum: list(r.enum) } : fvToJsonSchema(r.items)) : undefined,
		...lengths(r, "minItems", "maxItems"),
		uniqueItems: r.unique ? true : undefined,
	}),
	object: (r) => {
		const props = r.props ?? r.properties;
		return props && typeof props === "object" ? objectSchema(props, isStrict(r.strict)) : { type: "object" };
	},
	enum: (r) => {
		const values = list(r.values) ?? [];
		return clean({ type: values.length && values.every((v) => typeof v === "string") ? "string" : undefined, enum: values });
	},
	equal: (r) => ({ const: r.value }),
	any: () => ({}),
	uuid: () => ({ type: "string", format: "uuid" }),
	email: (r) => clean({ type: "string", format: "email", ...lengths(r, "minLength", "maxLength") }),
	url: () => ({ type: "string", format: "uri" }),
	// FV's multi passes when any rule passes (anyOf); oneOf says the same while the variants are disjoint.
	multi: (r) => ({ oneOf: (list(r.rules) ?? []).map((x) => fvToJsonSchema(x)) }),
	forbidden: () => ({ not: {} }),
};

/** One FV rule -> JSON Schema 2020-12. Unknown types give `{}` (anything) rather than failing. */
export function fvToJsonSchema(rule: unknown): JsonSchema {
	const r = normalize(rule);
	if (!r) return {};
	const custom = CUSTOM_TYPES[r.type];
	let out: JsonSchema = custom ? structuredClone(custom) : (TYPES[r.type]?.(r) ?? {});
	if (typeof r.description === "string") out.description = r.description;
	if (r.default !== undefined && typeof r.default !== "function") out.default = r.default;
	if (r.nullable === true) {
		if (typeof out.type === "string") {
			out.type = [out.type, "null"];
			if (Array.isArray(out.enum)) out.enum = [...out.enum, null];
		} else out = { oneOf: [out, { type: "null" }] };
	}
	// Escape hatch for what FV cannot express (examples, formats…).
	if (r.openapi && typeof r.openapi === "object") out = { ...out, ...r.openapi };
	return out;
}

const ERRORS: Record<string, [string, string]> = {
	400: ["BadRequest", "Malformed request (e.g. invalid JSON body; on a consultation, a missing or unknown Finalidade)."],
	401: ["Unauthorized", "Missing or invalid API key."],
	403: ["Forbidden", "The API key lacks the required scope (or, on a consultation, may not use the stated Finalidade)."],
	404: ["NotFound", "No such resource."],
	409: ["Conflict", "Conflicts with the current state, or the Idempotency-Key was reused with another body."],
	413: ["PayloadTooLarge", "Request body too large."],
	415: ["UnsupportedMediaType", "Content-Type must be application/json."],
	422: ["ValidationError", "Parameters failed validation; `data` lists the failing fields."],
	429: ["TooManyRequests", "Rate limit exceeded; retry after `Retry-After` seconds."],
	503: ["ServiceUnavailable", "A backing service is unavailable; retry after `Retry-After` seconds."],
};
const STATUS_TEXT: Record<number, string> = { 200: "OK", 201: "Created", 202: "Accepted", 204: "No Content" };
const requestIdHeader = () => ({ "X-Request-Id": { $ref: "#/components/headers/XRequestId" } });

/** The header every consulting request states its purpose in: one of the documented codes (400 without it, 403 when the key may not use it). */
const purposeHeader = () => ({
	name: "Finalidade", in: "header", required: true,
	description: "The purpose of this consultation (LGPD art. 7; docs/consultation-purpose.md): missing or unknown → 400, not allowed for this API key → 403, and nothing is consulted.\n\n"
		+ Object.entries(PURPOSES).map(([code, meaning]) => `- \`${code}\`: ${meaning}`).join("\n"),
	schema: { type: "string", enum: Object.keys(PURPOSES) }
});

// "cpf-lookup.get" -> "cpfLookupGet"
const operationId = (action: string) =>
	action.split(/[^A-Za-z0-9]+/).filter(Boolean).map((w, i) => (i ? w[0].toUpperCase() + w.slice(1) : w)).join("");

/**
 * An action's FV params as one JSON object schema, made where the action lives. Plain JSON with no
 * shared objects: action definitions cross the transporter through moleculer's safetyObject, which
 * turns a RegExp into {} and drops any object met twice (a rule reused by two fields).
 */
export function paramsSchema(params: Record<string, unknown>): JsonSchema {
	return JSON.parse(JSON.stringify(objectSchema(params, false)));
}

function operation(route: RouteSpec, schema: JsonSchema, opId: string): Record<string, any> {
	const pathNames = [...route.path.matchAll(/:(\w+)/g)].map((m) => m[1]);
	const hasBody = route.method === "POST" || route.method === "PUT" || route.method === "PATCH";
	const props: Record<string, JsonSchema> = schema.properties ?? {};
	const required = new Set<string>(schema.required ?? []);
	const fields = Object.keys(props);
	const rest = fields.filter((k) => !pathNames.includes(k));
	const parameters: Record<string, any>[] = pathNames.map((name) => (
		{ name, in: "path", required: true, schema: props[name] ?? { type: "string" } }
	));
	if (!hasBody) {
		for (const name of rest) parameters.push({ name, in: "query", required: required.has(name), schema: props[name] });
	}
	if (route.idempotent) {
		const description = "Retrying with the same key returns the first result instead of repeating the effect.";
		parameters.push({ name: "Idempotency-Key", in: "header", required: false, description, schema: { type: "string", pattern: IDEMPOTENCY_KEY_PATTERN, minLength: 1, maxLength: 128 } });
	}

	if (route.consultation) parameters.push(purposeHeader());

	const success: Record<string, any> = { description: STATUS_TEXT[route.status] ?? "Success", headers: requestIdHeader() };
	if (route.status !== 204 && (route.response || route.responseContentType)) {
		success.content = { [route.responseContentType ?? "application/json"]: { schema: route.response ?? {} } };
	}
	const codes = [401, 403, 429, 503];
	if (fields.length || route.consultation) codes.push(400);
	if (fields.length) codes.push(422);
	// Any path parameter names a resource that may not exist (:cpf, :id, …).
	if (pathNames.length) codes.push(404);
	if (hasBody) codes.push(409, 413, 415);
	const responses: Record<string, any> = { [String(route.status)]: success };
	for (const status of route.alsoStatus ?? []) responses[String(status)] = { ...success, description: STATUS_TEXT[status] ?? "Success" };
	for (const code of codes.sort((a, b) => a - b)) responses[code] = { $ref: `#/components/responses/${ERRORS[code][0]}` };

	const op: Record<string, any> = {
		operationId: opId,
		summary: route.summary,
		description: `Requires scope \`${route.scope}\`.`,
		tags: [route.tag],
		security: [{ bearerAuth: [] }],
		"x-scope": route.scope,
	};
	if (parameters.length) op.parameters = parameters;
	if (route.requestBody) op.requestBody = route.requestBody;
	else if (hasBody && rest.length) {
		const body: JsonSchema = { type: "object", properties: Object.fromEntries(rest.map((k) => [k, props[k]])) };
		const bodyRequired = rest.filter((k) => required.has(k));
		if (bodyRequired.length) body.required = bodyRequired;
		if (schema.additionalProperties === false) body.additionalProperties = false;
		op.requestBody = { required: true, content: { "application/json": { schema: withBodyRules(body, route.body) } } };
	}
	op.responses = responses;
	return op;
}

function withBodyRules(schema: JsonSchema, rules: JsonSchema | undefined): JsonSchema {
	if (!rules) return schema;
	const required = [...new Set([...(schema.required ?? []), ...(rules.required ?? [])])];
	return { ...schema, ...rules, ...(required.length ? { required } : {}) };
}

export function buildOpenApi(input: OpenApiInput): OpenApiDocument {
	const baseIds = input.routes.map((r) => operationId(r.action));
	const used = new Set<string>();
	// An action served by several routes gets its method appended; a counter settles any remaining clash.
	const ids = input.routes.map((route, i) => {
		const shared = baseIds.indexOf(baseIds[i]) !== baseIds.lastIndexOf(baseIds[i]);
		const base = shared ? baseIds[i] + route.method[0] + route.method.slice(1).toLowerCase() : baseIds[i];
		let id = base;
		for (let n = 2; used.has(id); n++) id = base + n;
		used.add(id);
		return id;
	});
	const idOf = new Map(input.routes.map((r, i) => [`${r.method} ${r.path}`, ids[i]]));
	const paths: Record<string, Record<string, any>> = {};
	input.routes.forEach((route, i) => {
		const id = ids[i];
		const path = (input.prefix.replace(/\/+$/, "") + route.path.replace(/\/+$/, "").replace(/:(\w+)/g, "{$1}")) || "/";
		const method = route.method.toLowerCase();
		paths[path] ??= {};
		if (paths[path][method]) throw new Error(`openapi: duplicate route ${route.method} ${path}`);
		paths[path][method] = operation(route, input.actionSchemas[route.action] ?? {}, id);
		if (route.links) {
			paths[path][method].responses[String(route.status)].links = Object.fromEntries(Object.entries(route.links).map(([name, link]) => {
				const target = idOf.get(link.to);
				if (!target) throw new Error(`openapi: link ${name} of ${route.method} ${route.path} names no route: ${link.to}`);
				return [name, { operationId: target, parameters: link.parameters }];
			}));
		}
	});
	for (const [path, item] of Object.entries(input.extraPaths ?? {})) paths[path] = { ...paths[path], ...(item as object) };

	const responses: Record<string, any> = {};
	for (const [code, [name, description]] of Object.entries(ERRORS)) {
		responses[name] = {
			description,
			headers: code === "429" || code === "503" ? { ...requestIdHeader(), "Retry-After": { $ref: "#/components/headers/RetryAfter" } } : requestIdHeader(),
			content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
		};
	}

	return {
		openapi: "3.1.0",
		info: { title: input.title, version: input.version, ...(input.description ? { description: input.description } : {}) },
		servers: [{ url: "/" }],
		tags: [...new Set(input.routes.map((r) => r.tag))].map((name) => ({ name })),
		paths,
		components: {
			securitySchemes: { bearerAuth: { type: "http", scheme: "bearer", description: "API key issued by POST /api/v1/consumers" } },
			schemas: {
				// moleculer-web's error body.
				Error: {
					type: "object",
					properties: { name: { type: "string" }, message: { type: "string" }, code: { type: "integer" }, type: { type: "string" }, data: {} },
					required: ["name", "message", "code"],
				},
			},
			headers: {
				XRequestId: { description: "Correlation id of this request; quote it when reporting problems.", required: false, schema: { type: "string" } },
				RetryAfter: { description: "Seconds to wait before retrying.", required: false, schema: { type: "integer", minimum: 0 } },
			},
			responses,
		},
	};
}
