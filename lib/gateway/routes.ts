import type { JsonSchema, RouteSpec } from "../openapi";
import type { Scope } from "../scopes";

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
	type: "object", required: ["id", "name", "scopes", "rateLimit", "createdAt"],
	properties: { id: { type: "string", format: "uuid" }, name: str, scopes: { type: "array", items: str }, rateLimit: { type: "integer" }, createdAt: { type: "string", format: "date-time" }, key: { type: "string", description: "Shown once, at creation" } }
};
const auditPage: JsonSchema = {
	type: "object", required: ["entries", "next"],
	properties: {
		entries: { type: "array", items: { type: "object", properties: { seq: { type: "integer" }, at: { type: "string", format: "date-time" }, consumer: str, action: str, requestId: { type: ["string", "null"] }, outcome: str } } },
		next: { type: ["integer", "null"], description: "Pass as `after` for the next page" }
	}
};
const auditVerify: JsonSchema = {
	type: "object", required: ["ok", "rows", "head", "broken"],
	properties: { ok: { type: "boolean" }, rows: { type: "integer" }, head: { type: "integer" }, broken: { type: "array", items: { type: "object", properties: { seq: { type: "integer" }, reason: str } } } }
};

export interface GatewayRoute extends RouteSpec {
	scope: Scope;
}

/** The whole REST surface under /api/v1: each route, its action and the scope it requires. */
export const ROUTES: GatewayRoute[] = [
	{ method: "POST", path: "/persons", action: "persons.create", scope: "persons:write", status: 201, tag: "Base A", summary: "Register a person", response: person, idempotent: true },
	{ method: "PUT", path: "/persons/:cpf", action: "persons.update", scope: "persons:write", status: 200, tag: "Base A", summary: "Change a person's name or address", response: person, idempotent: true },
	{ method: "GET", path: "/persons/:cpf", action: "cpf-lookup.get", scope: "persons:read", status: 200, tag: "Base A", summary: "Payload A: identity and debts (counts as a consultation)", response: payloadA },
	{ method: "POST", path: "/persons/:cpf/dividas", action: "debt-write.create", scope: "debts:write", status: 201, tag: "Base A", summary: "Record a debt", response: divida, idempotent: true },
	{ method: "PATCH", path: "/persons/:cpf/dividas/:id", action: "debt-write.settle", scope: "debts:write", status: 200, tag: "Base A", summary: "Settle a debt (set datePagamento)", response: divida, idempotent: true },
	{ method: "GET", path: "/audit", action: "audit.list", scope: "audit:read", status: 200, tag: "Audit", summary: "Audit trail, optionally of one CPF and a date range", response: auditPage },
	{ method: "GET", path: "/audit/verify", action: "audit.verify", scope: "audit:read", status: 200, tag: "Audit", summary: "Verify the audit hash chain", response: auditVerify },
	{ method: "POST", path: "/consumers", action: "consumers.create", scope: "consumers:admin", status: 201, tag: "Consumers", summary: "Issue an API key (shown once)", response: consumer, idempotent: true },
	{ method: "DELETE", path: "/consumers/:id", action: "consumers.revoke", scope: "consumers:admin", status: 204, tag: "Consumers", summary: "Revoke an API key" }
];

export const API_PREFIX = "/api/v1";
