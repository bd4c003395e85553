import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Errors, ServiceBroker } from "moleculer";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../config";
import { BaseUnavailableError, InvalidFieldError, NotFoundError } from "../../lib/errors";
import { isUnexpected, scrubBreadcrumb, scrubEvent, SentryMiddleware } from "../../middlewares/sentry.middleware";

const CPF = "52998224725";
const NOME = "Zuleika Bragancaverde";
const ENDERECO = "Rua Inesquecivel Xyz, 4321";

const sentryLoaded = () => Object.keys(require.cache).some(path => path.includes("/@sentry/"));

describe("Sentry middleware", () => {
	it("is inert without a DSN: no hooks, Sentry never loaded nor initialised", async () => {
		const middleware = SentryMiddleware({ dsn: undefined, environment: "test" });
		expect(Object.keys(middleware)).toEqual(["name"]);
		const broker = new ServiceBroker({ logger: false, transporter: null, middlewares: [middleware] });
		broker.createService({ name: "boom", actions: { fail: () => Promise.reject(new Error("unexpected")) } });
		await broker.start();
		await expect(broker.call("boom.fail")).rejects.toThrow("unexpected");
		await broker.stop();
		expect(sentryLoaded()).toBe(false);
		expect((globalThis as any).__SENTRY__).toBeUndefined(); // Sentry's global state does not even exist
	});

	it("takes SENTRY_DSN or SENTRY_DSN_FILE, an http(s) URL; the environment defaults to NODE_ENV", () => {
		const dir = mkdtempSync(join(tmpdir(), "sentry-"));
		writeFileSync(join(dir, "dsn"), "https://key@o1.ingest.sentry.io/42\n");
		expect(loadConfig({ SENTRY_DSN_FILE: join(dir, "dsn") }).sentryDsn).toBe("https://key@o1.ingest.sentry.io/42");
		expect(loadConfig({}).sentryDsn).toBeUndefined();
		expect(loadConfig({ NODE_ENV: "production" }).sentryEnvironment).toBe("production");
		expect(loadConfig({ NODE_ENV: "production", SENTRY_ENVIRONMENT: "staging" }).sentryEnvironment).toBe("staging");
		expect(() => loadConfig({ SENTRY_DSN: "ftp://secret@x/1" })).toThrow(/SENTRY_DSN/);
		expect(() => loadConfig({ SENTRY_DSN: "ftp://secret@x/1" })).not.toThrow(/secret/);
	});

	it("reports only what the client sees as a bare 500", () => {
		const { MoleculerError, MoleculerClientError, ValidationError, ServiceNotAvailableError, ServiceNotFoundError, RequestTimeoutError } = Errors;
		// Unexpected: no code, 500, 502, a code outside HTTP's error range.
		expect(isUnexpected(new Error("Unsupported state or unable to authenticate data"))).toBe(true);
		expect(isUnexpected(new TypeError("Cannot read properties of undefined"))).toBe(true);
		expect(isUnexpected(new MoleculerError("boom", 500))).toBe(true);
		expect(isUnexpected(new MoleculerError("bad gateway", 502))).toBe(true);
		expect(isUnexpected(Object.assign(new Error("odd"), { code: "XX000" }))).toBe(true);
		// Expected outages (503 with Retry-After) and client errors.
		expect(isUnexpected(new BaseUnavailableError("A"))).toBe(false);
		expect(isUnexpected(new ServiceNotAvailableError({ action: "cpf-lookup.get" }))).toBe(false);
		expect(isUnexpected(new ServiceNotFoundError({ action: "cpf-lookup.get" }))).toBe(false);
		expect(isUnexpected(new RequestTimeoutError({ action: "cpf-lookup.get", nodeID: "n" }))).toBe(false);
		expect(isUnexpected(new NotFoundError("Person"))).toBe(false);
		expect(isUnexpected(new InvalidFieldError("cpf", "bad"))).toBe(false);
		expect(isUnexpected(new ValidationError("bad", "VALIDATION_ERROR", []))).toBe(false);
		expect(isUnexpected(new MoleculerClientError("conflict", 409))).toBe(false);
		expect(isUnexpected(Object.assign(new Error("bad json"), { type: "entity.parse.failed" }))).toBe(false);
	});

	it("scrubs CPFs, names, addresses, request data and user from the whole event", () => {
		const requestId = "0f2b9c1e-1234-4abc-8def-123456789012";
		const event: any = {
			event_id: "a1b2c3d4e5f60718293a4b5c6d7e8f90",
			message: `lookup of ${CPF} failed`,
			logentry: { message: `person %s`, params: [NOME] },
			exception: { values: [{ type: "SyntaxError", value: `Unexpected token 'Z', "${NOME}" is not valid JSON (cpf 529.982.247-25)` }] },
			tags: { action: "cpf-lookup.get", request_id: requestId },
			extra: { nome: NOME, params: { cpf: CPF, endereco: ENDERECO }, note: `at ${ENDERECO.replace(/.*/, '"$&"')}` },
			contexts: { person: { endereco: ENDERECO, cpf: CPF }, trace: { trace_id: "12345678901234567890123456789012", span_id: "1234567890123456" } },
			request: { method: "POST", url: `http://user:pass@api/api/v1/persons/${CPF}?nome=${NOME}`, data: { nome: NOME }, query_string: `nome=${NOME}`, headers: { authorization: "Bearer cm_secret" }, cookies: { s: "x" } },
			user: { ip_address: "10.0.0.1", username: NOME },
			breadcrumbs: [{ category: "http", message: `GET /persons/529.982.247-25`, data: { url: `http://es:9200/persons/${CPF}?q=${NOME}`, "http.query": `q=${NOME}`, body: { nome: NOME } } }]
		};
		const out = scrubEvent(event);
		const text = JSON.stringify(out);
		for (const secret of [CPF, "529.982.247-25", NOME, "Bragancaverde", ENDERECO, "Inesquecivel", "cm_secret", "pass@", "10.0.0.1"]) {
			expect(text).not.toContain(secret);
		}
		expect(out.event_id).toBe(event.event_id);
		expect(out.tags).toEqual({ action: "cpf-lookup.get", request_id: requestId });
		expect(out.contexts!.trace).toMatchObject({ trace_id: event.contexts.trace.trace_id, span_id: event.contexts.trace.span_id });
		expect(out.request).toEqual({ method: "POST", url: "http://api/api/v1/persons/[redacted]" });
		expect(out.exception!.values![0].type).toBe("SyntaxError");
		expect(out.exception!.values![0].value).toContain("is not valid JSON");
		expect(out.user).toBeUndefined();
		expect(event.message).toContain(CPF); // the original is left alone
	});

	it("scrubs breadcrumbs on their way in", () => {
		const crumb = scrubBreadcrumb({ category: "http", message: `POST /api/v1/persons/${CPF}`, data: { url: `/api/v1/persons/${CPF}?x=1`, method: "GET", params: { nome: NOME } } });
		expect(crumb).toEqual({ category: "http", message: "POST /api/v1/persons/[redacted]", data: { url: "/api/v1/persons/[redacted]", method: "GET" } });
	});
});
