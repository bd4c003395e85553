import { fvToJsonSchema, type JsonSchema, type RouteSpec } from "../openapi";
import type { Scope } from "../scopes";
import { MOVEMENT_LIMIT, MOVEMENT_TYPES } from "../base-c/movement";
import { BATCH_LIMIT } from "../batch";
import type { ItemLimit } from "../errors";

// Response shapes, for the OpenAPI document.
const str = { type: "string" };
const date = { type: "string", pattern: "^\\d{2}/\\d{2}/\\d{4}$", examples: ["15/03/2024"] };
const divida: JsonSchema = {
	type: "object",
	required: ["id", "valor", "empresa", "dataVencimento", "datePagamento"],
	properties: { id: { type: "string", format: "uuid" }, valor: { type: "number" }, empresa: str, dataVencimento: date, datePagamento: { ...date, type: ["string", "null"] } }
};
const person: JsonSchema = {
	type: "object", required: ["cpf", "nome", "endereco"],
	properties: { cpf: { type: "string", pattern: "^\\d{11}$" }, nome: str, endereco: str }
};
const payloadA: JsonSchema = { ...person, required: [...person.required, "dividas"], properties: { ...person.properties, dividas: { type: "array", items: divida } } };
const consumer: JsonSchema = {
	type: "object", required: ["id", "name", "scopes", "purposes", "rateLimit", "createdAt"],
	properties: { id: { type: "string", format: "uuid" }, name: str, scopes: { type: "array", items: str }, purposes: { type: "array", items: str, description: "The Finalidade codes this key may consult for" }, rateLimit: { type: "integer" }, createdAt: { type: "string", format: "date-time" }, key: { type: "string", description: "Shown once, at creation" } }
};
/** One consultation as GET /consultations/:cpf and the LGPD access export show it. */
const consultationView: JsonSchema = {
	type: "object", required: ["at", "purpose", "consumer"],
	properties: {
		at: { type: "string", format: "date-time" },
		purpose: { type: ["string", "null"], description: "The Finalidade code stated (null: recorded before purposes existed)" },
		consumer: { type: "object", required: ["id", "name"], properties: { id: str, name: { type: ["string", "null"], description: "null for an operator or a consumer no longer known" } } }
	}
};
const auditPage: JsonSchema = {
	type: "object", required: ["entries", "next"],
	properties: {
		entries: { type: "array", items: { type: "object", properties: { seq: { type: "integer" }, at: { type: "string", format: "date-time" }, consumer: str, action: str, requestId: { type: ["string", "null"] }, outcome: str } } },
		next: { type: ["integer", "null"], description: "Pass as `after` for the next page" }
	}
};
const consultationsPage: JsonSchema = {
	type: "object", required: ["cpf", "total", "consultations", "next"],
	properties: {
		cpf: { type: "string", pattern: "^\\d{11}$" }, total: { type: "integer" },
		consultations: { type: "array", items: consultationView },
		next: { type: ["string", "null"], description: "Pass as `after` for the next page" }
	}
};
const auditVerify: JsonSchema = {
	type: "object", required: ["ok", "rows", "head", "broken"],
	properties: {
		ok: { type: "boolean" }, mode: { type: "string", enum: ["incremental", "full"] }, rows: { type: "integer" }, head: { type: "integer" },
		// The newest good signed checkpoint of the head (docs/audit.md); null before the first.
		checkpoint: { type: ["object", "null"], properties: { seq: { type: "integer" }, at: { type: "string", format: "date-time" } } },
		broken: { type: "array", items: { type: "object", properties: { seq: { type: "integer" }, reason: str } } }
	}
};

const payloadB: JsonSchema = {
	type: "object", required: ["cpf", "dataNascimento", "idade", "endereco", "fonteDeRenda", "bens"],
	properties: {
		cpf: { type: "string", pattern: "^\\d{11}$" }, dataNascimento: date, idade: { type: "integer" }, endereco: str,
		fonteDeRenda: str,
		bens: { type: "array", items: { type: "object", required: ["tipo", "inicioPosse", "quitado"], properties: { tipo: str, inicioPosse: date, quitado: { type: "boolean" } } } }
	}
};
const score: JsonSchema = {
	type: "object", required: ["cpf", "score", "band", "reasons"],
	properties: {
		cpf: { type: "string", pattern: "^\\d{11}$" }, score: { type: "integer", minimum: 0, maximum: 1000 }, band: str,
		reasons: { type: "array", items: { type: "object", required: ["code", "points", "message"], properties: { code: str, points: { type: "integer" }, message: str } } }
	}
};

const movement: JsonSchema = {
	type: "object", required: ["cpf", "tipo", "valor", "data"], additionalProperties: false,
	properties: {
		cpf: fvToJsonSchema("cpf"),
		tipo: { type: "string", enum: [...MOVEMENT_TYPES] },
		valor: fvToJsonSchema("money"),
		data: fvToJsonSchema("date"),
		id: { type: "string", pattern: "^[A-Za-z0-9._:-]{1,64}$", description: "Your id for the movement; resending it never counts it twice" }
	}
};
const movementView: JsonSchema = { type: "object", required: ["tipo", "valor", "data"], properties: { tipo: str, valor: { type: "number" }, data: date } };
const payloadC: JsonSchema = {
	type: "object", required: ["cpf", "ultimaConsulta", "ultimaCompraCC", "movimentacaoFinanceira"],
	properties: {
		cpf: { type: "string", pattern: "^\\d{11}$" },
		ultimaConsulta: { ...date, type: ["string", "null"] },
		ultimaCompraCC: { type: ["object", "null"], required: ["data", "valor"], properties: { data: date, valor: { type: "number" } } },
		movimentacaoFinanceira: { type: "array", items: movementView }
	}
};
const movementsPage: JsonSchema = {
	type: "object", required: ["cpf", "total", "totals", "movements", "next"],
	properties: {
		cpf: str, total: { type: "integer" },
		totals: { type: "object", additionalProperties: { type: "object", properties: { count: { type: "integer" }, valor: { type: "number" } } } },
		movements: { type: "array", items: movementView },
		next: { type: ["string", "null"], description: "Pass as `after` for the next page" }
	}
};

const subscription: JsonSchema = {
	type: "object", required: ["id", "url", "eventTypes", "createdAt"],
	properties: { id: { type: "string", format: "uuid" }, url: str, eventTypes: { type: "array", items: str }, createdAt: { type: "string", format: "date-time" }, secret: { type: "string", pattern: "^whsec_", description: "Shown once, at creation: verify deliveries with it (Standard Webhooks)" } }
};
const webhookDelivery: JsonSchema = {
	type: "object", required: ["id", "subscriptionId", "eventId", "eventType", "status", "attempts"],
	properties: {
		id: { type: "string", format: "uuid" }, subscriptionId: { type: "string", format: "uuid" }, eventId: { type: "string", format: "uuid", description: "The webhook-id header: deduplicate with it" },
		eventType: str, eventAt: { type: "string", format: "date-time" }, status: { type: "string", enum: ["pending", "delivered", "dead", "dropped"] },
		attempts: { type: "integer" }, lastStatus: { type: ["integer", "null"] }, lastError: { type: ["string", "null"] },
		nextAt: { type: ["string", "null"], format: "date-time" }, deliveredAt: { type: ["string", "null"], format: "date-time" }
	}
};

const part = (data: JsonSchema): JsonSchema => ({
	type: "object", required: ["status"],
	description: "`ok` with `data`; `not_found`; `forbidden` (the key lacks the part's scope); `unavailable` or `error` with `reason`",
	properties: { status: { type: "string", enum: ["ok", "not_found", "forbidden", "unavailable", "error"] }, data, reason: str }
});
const report: JsonSchema = {
	type: "object", required: ["cpf", "complete", "baseA", "baseB", "score", "baseC"],
	properties: {
		cpf: { type: "string", pattern: "^\\d{11}$" },
		complete: { type: "boolean", description: "false when an allowed part could not be read (its base is down)" },
		baseA: part(payloadA), baseB: part(payloadB), score: part(score), baseC: part(payloadC)
	}
};

const scorePart = { type: "string", enum: ["debts", "assets", "movements", "consultations"] };
const scoreComponent: JsonSchema = {
	type: "object", required: ["code", "value", "points", "neutral"],
	properties: { code: str, part: scorePart, value: { type: ["number", "null"] }, points: { type: "integer" }, maxPoints: { type: "integer" }, neutral: { type: "boolean", description: "the part was missing: the characteristic's neutral points" } }
};
const scoreCore = {
	score: { type: "integer", minimum: 0, maximum: 1000 },
	band: { type: "string", enum: ["A", "B", "C", "D", "E"] },
	risk: { type: "string", examples: ["baixo risco"] },
	model: { type: "string", examples: ["cm-score-1.0"] },
	complete: { type: "boolean", description: "false when a part was missing (docs/credit-score.md, missing parts)" },
	missing: { type: "array", items: { type: "object", required: ["part", "reason"], properties: { part: scorePart, reason: { type: "string", enum: ["not_found", "no_data", "unavailable", "not_supported"] } } } },
	components: { type: "array", items: scoreComponent }
};
const creditScore: JsonSchema = {
	type: "object", required: ["cpf", "score", "band", "risk", "model", "computedAt", "complete", "missing", "components", "reasons", "recorded"],
	properties: {
		cpf: { type: "string", pattern: "^\\d{11}$" }, ...scoreCore,
		computedAt: { type: "string", format: "date-time" },
		reasons: { type: "array", maxItems: 4, description: "The strongest negative factors, in Portuguese", items: { type: "object", required: ["code", "pointsLost", "message"], properties: { code: str, pointsLost: { type: "integer" }, message: str } } },
		recorded: { type: "boolean", description: "false when the score could not be kept in the history (Base B down)" }
	}
};
const scoreHistory: JsonSchema = {
	type: "object", required: ["cpf", "entries", "next"],
	properties: {
		cpf: { type: "string", pattern: "^\\d{11}$" },
		entries: { type: "array", items: { type: "object", required: ["score", "band", "model", "computedAt", "components"], properties: { ...scoreCore, computedAt: { type: "string", format: "date-time" } } } },
		next: { type: ["string", "null"], description: "Pass as `before` for the next (older) page" }
	}
};

/** One line of a batch's NDJSON answer (docs/batch.md): the CPF's position, the CPF, its status, and when ok its answer under `field`. */
const batchLine = (field: string, answer: JsonSchema): JsonSchema => ({
	type: "object", required: ["index", "cpf", "status"],
	properties: {
		index: { type: "integer", minimum: 0, description: "The CPF's position in the input" },
		cpf: { type: ["string", "null"], description: "The CPF's digits; for an invalid item, what was sent (a string, cut short) or null" },
		status: { type: "string", enum: ["ok", "not_found", "invalid", "unavailable"] },
		[field]: answer
	}
});

/** What a batch route takes and answers (POST /scores/batch, POST /reports/batch): raw body, NDJSON stream of batchLine. */
const batchRoute = (line: JsonSchema): Pick<GatewayRoute, "response" | "responseContentType" | "rawBody" | "accepts" | "items" | "requestBody"> => ({
	// The stream as a whole, as NDJSON readers (and schemathesis) take it: a list of lines, each one a batchLine.
	response: { type: "array", description: "One JSON object per line, in input order", items: line }, responseContentType: "application/x-ndjson",
	rawBody: true, accepts: ["application/json", "application/x-ndjson"],
	items: BATCH_LIMIT,
	requestBody: {
		required: true,
		content: {
			"application/json": { schema: { type: "array", minItems: 1, maxItems: 10_000, items: { description: "A CPF (a string) or {\"cpf\": …}; any other entry is answered on its own line with status `invalid`, the rest of the batch goes on" } } },
			"application/x-ndjson": { schema: { type: "string", minLength: 11, description: "One CPF (bare or quoted) or {\"cpf\": …} per line, at most 10 000 lines" } }
		}
	}
});

// Where a written CPF can be read back and used next (OpenAPI links).
const byCpf = (to: Record<string, string>): RouteSpec["links"] =>
	Object.fromEntries(Object.entries(to).map(([name, route]) => [name, { to: route, parameters: { cpf: "$response.body#/cpf" } }]));
const personLinks = byCpf({ ReadPerson: "GET /persons/:cpf", ChangePerson: "PUT /persons/:cpf", RecordDebt: "POST /persons/:cpf/dividas", Report: "GET /reports/:cpf", PrivacyAccess: "GET /privacy/:cpf" });
const profileLinks = byCpf({ ReadProfile: "GET /profiles/:cpf", Score: "GET /profiles/:cpf/score", Report: "GET /reports/:cpf" });

/** An action's answer (or its params) as the route table reads it: by field name. */
export type ResultFields = Readonly<Record<string, unknown>> | null | undefined;

export interface GatewayRoute extends RouteSpec {
	scope: Scope;
	/** Media types the body may have (default JSON only). */
	accepts?: string[];
	/** The action gets the body as sent (object, array or text) instead of merged params. */
	rawBody?: boolean;
	/** How many lines an NDJSON body may hold: the gateway stops reading past that (413). */
	items?: ItemLimit;
	/** Where a 201 answer's resource is, under the prefix; `:name` from the answer, else the params. */
	location?: string;
	/** Fields of the answer shown this once (a new API key): never stored for an Idempotency replay. */
	shownOnce?: string[];
	/** The status of an answer, when it is not always `status` (middlewares/http-status.middleware.ts). */
	statusOf?: (result: ResultFields, locals: { created?: boolean }) => number;
}

/** The whole REST surface under /api/v1: each route, its action and the scope it requires. */
export const ROUTES: GatewayRoute[] = [
	{ method: "POST", path: "/persons", action: "persons.create", scope: "persons:write", status: 201, location: "/persons/:cpf", tag: "Base A", summary: "Register a person", response: person, idempotent: true, links: personLinks },
	{ method: "PUT", path: "/persons/:cpf", action: "persons.update", scope: "persons:write", status: 200, tag: "Base A", summary: "Change a person's name or address", response: person, idempotent: true, body: { anyOf: [{ required: ["nome"] }, { required: ["endereco"] }] } },
	{ method: "GET", path: "/persons/:cpf", action: "cpf-lookup.get", consultation: true, scope: "persons:read", status: 200, tag: "Base A", summary: "Payload A: identity and debts (counts as a consultation)", response: payloadA },
	{ method: "POST", path: "/persons/:cpf/dividas", action: "debt-write.create", scope: "debts:write", status: 201, location: "/persons/:cpf/dividas/:id", tag: "Base A", summary: "Record a debt", response: divida, idempotent: true,
		links: { SettleDebt: { to: "PATCH /persons/:cpf/dividas/:id", parameters: { cpf: "$request.path.cpf", id: "$response.body#/id" } } } },
	{ method: "PATCH", path: "/persons/:cpf/dividas/:id", action: "debt-write.settle", scope: "debts:write", status: 200, tag: "Base A", summary: "Settle a debt (set datePagamento)", response: divida, idempotent: true, body: { required: ["datePagamento"] } },
	{ method: "PUT", path: "/profiles/:cpf", action: "profiles.put", scope: "profiles:write", status: 200, alsoStatus: [201], location: "/profiles/:cpf",
		statusOf: (_result, locals) => (locals.created ? 201 : 200), tag: "Base B", summary: "Create (201) or replace (200) a financial profile; idade is derived", response: payloadB, idempotent: true, links: profileLinks },
	{ method: "GET", path: "/profiles/:cpf", action: "profiles.get", consultation: true, scope: "profiles:read", status: 200, tag: "Base B", summary: "Payload B (counts as a consultation)", response: payloadB },
	{ method: "GET", path: "/profiles/:cpf/score", action: "asset-score.get", consultation: true, scope: "score:read", status: 200, tag: "Base B", summary: "Explainable asset score 0–1000 (counts as a consultation)", response: score },
	{ method: "GET", path: "/ml/features", action: "api.mlFeatures", scope: "ml:export", status: 200, tag: "Base B", summary: "NDJSON stream of pseudonymised feature rows, one per profile", responseContentType: "application/x-ndjson" },
	{
		method: "POST", path: "/transactions", action: "transaction-ingest.ingest", scope: "transactions:write", status: 202, tag: "Base C",
		summary: "Ingest movements: one, a JSON array, or NDJSON; 202 once durably queued, all or nothing",
		response: { type: "object", required: ["accepted"], properties: { accepted: { type: "integer" } } },
		rawBody: true, accepts: ["application/json", "application/x-ndjson"],
		items: MOVEMENT_LIMIT,
		requestBody: {
			required: true,
			content: {
				"application/json": { schema: { oneOf: [movement, { type: "array", items: movement, minItems: 1 }] } },
				"application/x-ndjson": { schema: { type: "string", description: "One movement object per line" } }
			}
		}
	},
	{ method: "GET", path: "/activity/:cpf", action: "activity-front.get", scope: "activity:read", status: 200, tag: "Base C", summary: "Payload C: last consultation, last card purchase, latest movements", response: payloadC },
	{ method: "GET", path: "/activity/:cpf/movements", action: "activity-front.movements", scope: "activity:read", status: 200, tag: "Base C", summary: "Movements filtered by date range and tipo, with per-tipo totals, paged with `after`", response: movementsPage },
	{ method: "GET", path: "/reports/:cpf", action: "report.get", consultation: true, scope: "reports:read", status: 200, tag: "Reports", summary: "Base A, Base B, score and Base C in one answer, limited to the caller's scopes (a consultation)", response: report },
	{
		method: "POST", path: "/reports/batch", action: "report.batch", consultation: true, scope: "reports:read", status: 200, tag: "Reports",
		summary: "Reports of up to 10 000 CPFs (a JSON array, or NDJSON: one CPF or {\"cpf\": …} per line; more → 413), streamed as NDJSON in input order, one line per CPF with its own status, parts limited to the caller's scopes; each reported CPF is a consultation",
		...batchRoute(batchLine("report", { ...report, required: ["complete", "baseA", "baseB", "score", "baseC"], description: "When ok: the report, as GET /reports/{cpf} answers it (without its cpf, which is the line's)" }))
	},
	{ method: "GET", path: "/scores/:cpf", action: "credit-score.get", consultation: true, scope: "score:read", status: 200, tag: "Scores", summary: "Credit score 0–1000 from Bases A, B and C, with band, reasons and model version; a base down gives a partial score (a consultation)", response: creditScore,
		links: byCpf({ ScoreHistory: "GET /scores/:cpf/history" }) },
	{
		method: "POST", path: "/scores/batch", action: "credit-score.batch", consultation: true, scope: "score:read", status: 200, tag: "Scores",
		summary: "Credit scores of up to 10 000 CPFs (a JSON array, or NDJSON: one CPF or {\"cpf\": …} per line; more → 413), streamed as NDJSON in input order, one line per CPF with its own status; each scored CPF is a consultation",
		...batchRoute(batchLine("score", { ...creditScore, required: (creditScore.required as string[]).filter(r => r !== "cpf" && r !== "recorded"), description: "When ok: the credit score, as GET /scores/{cpf} answers it, without its cpf (the line's) and `recorded` (a batch keeps its scores after the lines leave)" }))
	},
	{ method: "GET", path: "/scores/:cpf/history", action: "score-history.list", scope: "score:read", status: 200, tag: "Scores", summary: "The credit scores computed for a CPF, newest first, paged with `before`", response: scoreHistory },
	{ method: "GET", path: "/privacy/:cpf", action: "privacy.access", scope: "privacy:admin", status: 200, tag: "Privacy (LGPD)", summary: "Everything held on a CPF in all three bases, with its audit trail; at most 10 000 movements, 1 000 consultations and 5 000 audit rows (newest movements first): `baseC.movementsNext` and `auditNext` continue in GET /activity/{cpf}/movements and GET /audit", response: { type: "object", required: ["cpf", "baseA", "baseB", "baseC", "audit", "auditNext"] } },
	{ method: "DELETE", path: "/privacy/:cpf", action: "privacy.erase", scope: "privacy:admin", status: 200, alsoStatus: [202], statusOf: result => (result?.status === "pending" ? 202 : 200), tag: "Privacy (LGPD)", summary: "Erase a CPF from all three bases: 200 when done, 202 while a base is still pending (finished automatically)", response: { type: "object", required: ["cpf", "status", "bases"], properties: { cpf: str, status: { type: "string", enum: ["erased", "pending"] }, bases: { type: "object" } } } },
	{ method: "GET", path: "/consultations/:cpf", action: "privacy.consultations", scope: "consultations:read", status: 200, tag: "Privacy (LGPD)", summary: "Who consulted a CPF, for which purpose and when, newest first, paged with `after` (not itself a consultation; audited)", response: consultationsPage },
	{ method: "GET", path: "/audit", action: "audit.list", scope: "audit:read", status: 200, tag: "Audit", summary: "Audit trail, optionally of one CPF and a date range", response: auditPage },
	{ method: "GET", path: "/audit/verify", action: "audit.verify", scope: "audit:read", status: 200, tag: "Audit", summary: "Verify the audit chain: from the last signed checkpoint, or every row with ?full=true", response: auditVerify },
	{ method: "POST", path: "/consumers", action: "consumers.create", scope: "consumers:admin", status: 201, location: "/consumers/:id", shownOnce: ["key"], tag: "Consumers", summary: "Issue an API key (shown once)", response: consumer, idempotent: true,
		links: { RevokeKey: { to: "DELETE /consumers/:id", parameters: { id: "$response.body#/id" } } } },
	{ method: "PATCH", path: "/consumers/:id", action: "consumers.update", scope: "consumers:admin", status: 200, tag: "Consumers", summary: "Set the purposes (Finalidade codes) an API key may consult for", response: consumer, body: { required: ["purposes"] } },
	{ method: "DELETE", path: "/consumers/:id", action: "consumers.revoke", scope: "consumers:admin", status: 204, tag: "Consumers", summary: "Revoke an API key" },
	{ method: "POST", path: "/monitoring/cpfs", action: "monitoring.addCpf", scope: "monitoring:write", status: 201, location: "/monitoring/cpfs", tag: "Monitoring", summary: "Put a CPF on your monitoring list (idempotent; bounded per consumer)", response: { type: "object", required: ["cpf"], properties: { cpf: str } }, idempotent: true },
	{ method: "GET", path: "/monitoring/cpfs", action: "monitoring.listCpfs", scope: "monitoring:read", status: 200, tag: "Monitoring", summary: "Your monitoring list, paged with `after`",
		response: { type: "object", required: ["cpfs", "next"], properties: { cpfs: { type: "array", items: { type: "object", properties: { cpf: str, since: { type: "string", format: "date-time" } } } }, next: { type: ["string", "null"] } } } },
	{ method: "DELETE", path: "/monitoring/cpfs/:cpf", action: "monitoring.removeCpf", scope: "monitoring:write", status: 204, tag: "Monitoring", summary: "Take a CPF off your monitoring list" },
	{ method: "POST", path: "/monitoring/subscriptions", action: "monitoring.subscribe", scope: "monitoring:write", status: 201, location: "/monitoring/subscriptions", shownOnce: ["secret"], tag: "Monitoring",
		summary: "Register a webhook endpoint for event types (debt.created, debt.settled, person.changed, erased, profile.changed, consulted); the whsec_ secret is shown once", response: subscription },
	{ method: "GET", path: "/monitoring/subscriptions", action: "monitoring.subscriptions", scope: "monitoring:read", status: 200, tag: "Monitoring", summary: "Your webhook subscriptions", response: { type: "object", required: ["subscriptions"], properties: { subscriptions: { type: "array", items: subscription } } } },
	{ method: "DELETE", path: "/monitoring/subscriptions/:id", action: "monitoring.unsubscribe", scope: "monitoring:write", status: 204, tag: "Monitoring", summary: "Remove a webhook subscription and its deliveries" },
	{ method: "GET", path: "/monitoring/deliveries", action: "webhook-deliveries.list", scope: "monitoring:read", status: 200, tag: "Monitoring", summary: "Your delivery log, newest first (filter by subscriptionId, status)", response: { type: "object", required: ["deliveries"], properties: { deliveries: { type: "array", items: webhookDelivery } } } },
	{ method: "POST", path: "/monitoring/deliveries/:id/replay", action: "webhook-deliveries.replay", scope: "monitoring:write", status: 202, tag: "Monitoring", summary: "Send a delivery again (a dead-lettered one included)", response: webhookDelivery }
];

export const API_PREFIX = "/api/v1";

/** The gateway's own GET paths outside the prefix (health, metrics, the document and Swagger UI). */
const OPERATION_PATHS = ["/health/live", "/health/ready", "/metrics", "/openapi.json", "/docs", "/docs/"];

/** How many of a template's segments are literal: `/scores/batch` (2) is the route of that path, not `/scores/:cpf` (1). */
const literalSegments = (template: string) => template.split("/").filter(s => s && !s.startsWith(":")).length;

// Most literal first, so that the first match is the route a path names.
const PATTERNS: { method: string; pattern: RegExp; template: string; literal: number; route?: GatewayRoute }[] = [
	...ROUTES.map(r => ({ method: r.method, pattern: new RegExp(`^${API_PREFIX}${r.path.replace(/:\w+/g, "[^/]+")}/?$`), template: `${API_PREFIX}${r.path}`, route: r })),
	...OPERATION_PATHS.map(p => ({ method: "GET", pattern: new RegExp(`^${p.replace(/\./g, "\\.")}$`), template: p === "/docs/" ? "/docs" : p }))
].map(p => ({ ...p, literal: literalSegments(p.template) })).sort((a, b) => b.literal - a.literal);

/**
 * The methods the routes of this path serve: what a 405 lists in `Allow` (none: the path is unknown, 404).
 * Only the most literal routes that match count: `/scores/batch` is POST's, not a CPF for `GET /scores/:cpf`.
 */
export function allowedMethods(pathname: string): string[] {
	const matching = PATTERNS.filter(p => p.pattern.test(pathname));
	const most = Math.max(...matching.map(p => p.literal));
	return [...new Set(matching.filter(p => p.literal === most).map(p => p.method))];
}

/**
 * The route a path belongs to, as the route table writes it (`/api/v1/persons/:cpf`): the `route`
 * label of the gateway's HTTP metrics. Never the path itself (a CPF is in it), and a bounded set:
 * Swagger UI's files are `/docs/*`, anything else `other`.
 */
export function routeTemplate(pathname: string): string {
	const hit = PATTERNS.find(p => p.pattern.test(pathname));
	if (hit) return hit.template;
	return pathname.startsWith("/docs/") ? "/docs/*" : "other";
}

/** The route of the table a request names (most literal first), before moleculer-web has resolved it. */
export function routeAt(method: string | undefined, pathname: string): GatewayRoute | undefined {
	return PATTERNS.find(p => p.method === method && p.route && p.pattern.test(pathname))?.route;
}
