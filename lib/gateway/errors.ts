import { scrubValue } from "../scrub";
import { classify, RETRY_AFTER_SECONDS, type Thrown } from "../errors";

export interface HttpError {
	status: number;
	body: { name: string; message: string; code: number; type?: string; data?: unknown };
	retryAfter?: number;
}

/** An error with a code of its own (MoleculerError's shape), as the answer shows it. */
interface CodedError {
	name: string;
	message: string;
	type?: string;
	data?: { retryAfter?: unknown };
}

// body-parser's error types, which arrive before any action runs.
const BODY_ERRORS: Record<string, [number, string, string]> = {
	"entity.too.large": [413, "PayloadTooLarge", "The request body is too large"],
	"entity.parse.failed": [400, "InvalidRequestBody", "The request body is not valid JSON"],
	"entity.verify.failed": [400, "InvalidRequestBody", "The request body could not be read"],
	"request.aborted": [400, "InvalidRequestBody", "The request body was not received in full"],
	"request.size.invalid": [400, "InvalidRequestBody", "The request body does not match its Content-Length"],
	"encoding.unsupported": [415, "UnsupportedMediaType", "The request body's encoding is not supported"],
	"charset.unsupported": [415, "UnsupportedMediaType", "The request body's charset is not supported"]
};

/**
 * The rule types whose `expected` is the schema's own (a length, a bound, the allowed values): only these
 * show it. Others may carry the client's data there (arrayUnique's `expected` is the repeated values).
 */
const SCHEMA_EXPECTED = new Set([
	"stringMin", "stringMax", "stringLength", "stringContains", "numberMin", "numberMax", "numberEqual", "numberNotEqual",
	"arrayMin", "arrayMax", "arrayLength", "arrayContains", "arrayEnum", "tupleLength", "emailMin", "emailMax",
	"objectMinProps", "objectMaxProps", "enumValue", "equalValue", "equalField"
]);

/** A schema's expected value as the answer may show it: a number, a short text, or a list of them. */
function plain(type: unknown, expected: unknown): unknown {
	if (typeof type !== "string" || !SCHEMA_EXPECTED.has(type)) return undefined;
	const ok = (v: unknown) => typeof v === "number" || typeof v === "boolean" || (typeof v === "string" && v.length <= 200);
	if (ok(expected)) return expected;
	if (Array.isArray(expected) && expected.length <= 50 && expected.every(ok)) return expected;
	return undefined;
}

/** Validation details without the offending values: they may be a CPF or a name. */
function safeData(data: unknown): unknown {
	if (Array.isArray(data)) {
		return data.map(d => (d && typeof d === "object" ? { index: d.index, type: d.type, field: d.field, message: d.message, expected: plain(d.type, d.expected) } : d));
	}
	return data === undefined ? undefined : scrubValue(data);
}

/**
 * Any error → the status and JSON body sent to the client (moleculer-web's shape). Client errors keep
 * their message; anything unexpected becomes a bare 500 so no stack, SQL or data leaks.
 */
export function toHttpError(err: unknown): HttpError {
	const e = err as Thrown;
	const bodyError = (typeof e?.type === "string" && BODY_ERRORS[e.type]) || (e?.code === "MAX_PAYLOAD_EXCEEDED" && BODY_ERRORS["entity.too.large"]);
	if (bodyError) {
		const [status, name, message] = bodyError;
		// A body-parser error other than 413 is named by its `type` (a string: BODY_ERRORS was found by it).
		return { status, body: { name, message, code: status, type: status === 413 ? "ENTITY_TOO_LARGE" : (e?.type as string).toUpperCase().replace(/\W/g, "_") } };
	}
	const { status } = classify(err);
	if (status === 503 && Number(e?.code) !== 503) {
		return {
			status: 503, retryAfter: RETRY_AFTER_SECONDS,
			body: { name: "ServiceUnavailableError", message: "The service is temporarily unavailable; try again later", code: 503, type: "SERVICE_UNAVAILABLE" }
		};
	}
	// From here on the error carries a client or 503 code of its own: a MoleculerError's shape.
	const coded = err as CodedError;
	const code = status;
	if (code >= 400 && code < 500) {
		const retryAfter = code === 429 ? Number(coded.data?.retryAfter) || 1 : undefined;
		return { status: code, retryAfter, body: { name: coded.name, message: coded.message, code, type: coded.type, data: safeData(coded.data) } };
	}
	if (code === 503) {
		return { status: 503, retryAfter: Number(coded.data?.retryAfter) || RETRY_AFTER_SECONDS, body: { name: coded.name, message: coded.message, code, type: coded.type, data: safeData(coded.data) } };
	}
	return { status: 500, body: { name: "InternalServerError", message: "Unexpected error; quote the X-Request-Id when reporting it", code: 500, type: "INTERNAL_ERROR" } };
}
