import { Errors } from "moleculer";
import { describe, expect, it } from "vitest";
import { toHttpError } from "../../../lib/gateway/errors";
import { BaseUnavailableError, ConflictError, ForbiddenError, InvalidFieldError, NotFoundError, RETRY_AFTER_SECONDS } from "../../../lib/errors";

/** An error as body-parser raises it, before any action runs. */
const bodyParserError = (type: string) => Object.assign(new Error(`body-parser: ${type}`), { type });

describe("toHttpError", () => {
	it("maps body-parser's errors to 413, 400 and 415 with a type of their own", () => {
		expect(toHttpError(bodyParserError("entity.too.large"))).toEqual({
			status: 413, body: { name: "PayloadTooLarge", message: "The request body is too large", code: 413, type: "ENTITY_TOO_LARGE" }
		});
		expect(toHttpError(bodyParserError("entity.parse.failed"))).toMatchObject({ status: 400, body: { name: "InvalidRequestBody", code: 400, type: "ENTITY_PARSE_FAILED" } });
		expect(toHttpError(bodyParserError("request.size.invalid"))).toMatchObject({ status: 400, body: { type: "REQUEST_SIZE_INVALID" } });
		expect(toHttpError(bodyParserError("charset.unsupported"))).toMatchObject({ status: 415, body: { name: "UnsupportedMediaType", type: "CHARSET_UNSUPPORTED" } });
		// The parser's own message (it may quote the body) is never passed on.
		expect(JSON.stringify(toHttpError(bodyParserError("entity.parse.failed")))).not.toContain("body-parser");
	});

	it("answers a request too large for one NATS message with 413, as an oversized body", () => {
		const err = Object.assign(new Error("payload too large: 12 MB"), { code: "MAX_PAYLOAD_EXCEEDED" });
		expect(toHttpError(err)).toMatchObject({ status: 413, body: { code: 413, type: "ENTITY_TOO_LARGE" } });
	});

	it("keeps a client error's name, message, type and data, with Retry-After only for 429", () => {
		expect(toHttpError(new NotFoundError("Person"))).toEqual({
			status: 404, retryAfter: undefined, body: { name: "NotFoundError", message: "Person not found", code: 404, type: "NOT_FOUND", data: undefined }
		});
		expect(toHttpError(new ConflictError("The person already exists", "PERSON_EXISTS"))).toMatchObject({ status: 409, body: { type: "PERSON_EXISTS" } });
		expect(toHttpError(new ForbiddenError("no", "ERR_MISSING_SCOPE", { required: "persons:read" }))).toMatchObject({ status: 403, body: { data: { required: "persons:read" } } });
		expect(toHttpError(new Errors.MoleculerClientError("slow down", 429, "RATE_LIMITED", { retryAfter: 17 }))).toMatchObject({ status: 429, retryAfter: 17 });
		expect(toHttpError(new Errors.MoleculerClientError("slow down", 429, "RATE_LIMITED"))).toMatchObject({ status: 429, retryAfter: 1 });
	});

	it("strips the offending values from validation details: only index, type, field and message go out", () => {
		const err = new Errors.ValidationError("Parameters validation error!", "VALIDATION_ERROR", [
			{ type: "stringPattern", field: "nome", message: "The 'nome' field may hold only letters", actual: "Robert'); DROP TABLE", expected: "/^…$/" },
			{ index: 3, type: "json", message: "Line 4 is not valid JSON.", actual: "{not json" }
		] as any);
		const { status, body } = toHttpError(err);
		expect(status).toBe(422);
		expect(body.data).toEqual([
			{ index: undefined, type: "stringPattern", field: "nome", message: "The 'nome' field may hold only letters" },
			{ index: 3, type: "json", field: undefined, message: "Line 4 is not valid JSON." }
		]);
		expect(JSON.stringify(body)).not.toMatch(/DROP|not json|expected/);
		expect(toHttpError(new InvalidFieldError("cpf", "The path's CPF and the body's differ"))).toMatchObject({ status: 422, body: { data: [{ field: "cpf", type: "invalid" }] } });
	});

	it("scrubs CPFs and personal fields out of other error data", () => {
		const err = new Errors.MoleculerClientError("no", 409, "CONFLICT", { cpf: "52998224725", nome: "Fulano", note: "CPF 529.982.247-25 again", count: 2 });
		expect(toHttpError(err).body.data).toEqual({ cpf: "[redacted]", nome: "[redacted]", note: "CPF [redacted] again", count: 2 });
	});

	it("answers a base down with 503 and its Retry-After", () => {
		expect(toHttpError(new BaseUnavailableError("A"))).toMatchObject({
			status: 503, retryAfter: RETRY_AFTER_SECONDS, body: { code: 503, type: "BASE_UNAVAILABLE", data: { base: "A", retryAfter: RETRY_AFTER_SECONDS } }
		});
	});

	it("answers no live node, a timeout or a full queue with a plain 503 that names no action or node", () => {
		for (const err of [
			new Errors.ServiceNotFoundError({ action: "cpf-lookup.get", nodeID: "base-a-1" }),
			new Errors.RequestTimeoutError({ action: "cpf-lookup.get", nodeID: "base-a-1" }),
			new Errors.QueueIsFullError({ action: "cpf-lookup.get", nodeID: "base-a-1", size: 1000, limit: 1000 })
		]) {
			const answer = toHttpError(err);
			expect(answer, err.name).toEqual({
				status: 503, retryAfter: RETRY_AFTER_SECONDS,
				body: { name: "ServiceUnavailableError", message: "The service is temporarily unavailable; try again later", code: 503, type: "SERVICE_UNAVAILABLE" }
			});
		}
	});

	it("turns anything unexpected into a bare 500: no message, stack, SQL or data", () => {
		const sql = Object.assign(new Error('relation "persons" does not exist: SELECT cpf_enc FROM persons WHERE cpf_bidx = $1'), { code: "42P01", sql: "SELECT 1" });
		const bare = { status: 500, body: { name: "InternalServerError", message: "Unexpected error; quote the X-Request-Id when reporting it", code: 500, type: "INTERNAL_ERROR" } };
		expect(toHttpError(sql)).toEqual(bare);
		expect(toHttpError(new Errors.MoleculerError("boom 52998224725", 500, "X", { cpf: "52998224725" }))).toEqual(bare);
		expect(toHttpError(new TypeError("Cannot read properties of undefined"))).toEqual(bare);
		expect(toHttpError(undefined)).toEqual(bare);
	});
});
