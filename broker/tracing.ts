import { createHash } from "node:crypto";
import { TracerExporters, type TracerOptions } from "moleculer";
import { scrubText } from "../lib/scrub";

/**
 * Zipkin's trace id (32 lowercase hex digits) for a request id. Moleculer's trace id IS the request
 * id (ctx.requestID, the X-Request-Id the client sees). The gateway's own ids are UUIDs: their 32
 * hex digits are the trace id as they are, so an operator pastes the header (dashes removed) into
 * Zipkin's search. A client's own X-Request-Id (any [A-Za-z0-9._-]{8,64}) is not hex: its trace id
 * is the first 32 hex digits of its SHA-256, which `zipkinTraceId` gives for any id.
 */
export function zipkinTraceId(requestId: string): string {
	const bare = requestId.replace(/-/g, "").toLowerCase();
	if (/^[0-9a-f]{32}$/.test(bare)) return bare;
	return createHash("sha256").update(requestId).digest("hex").slice(0, 32);
}

/** Span tags that carry what a caller sent or got back, never exported whatever an action declares. */
const PERSONAL_TAG = /^(params|meta|response|error\.data)(\.|$)/;

/**
 * Moleculer's Zipkin exporter with our ids and no personal data: the trace id from the request id
 * (zipkinTraceId), span ids as Zipkin's 16 hex digits, and no params, meta or response in any span
 * whatever an action's own `tracing.tags` asks for (moleculer-web's `rest` would put the URL, with a
 * CPF in it, there); span names and every other tag text are scrubbed of anything shaped like a CPF.
 */
export class PrivateZipkinExporter extends (TracerExporters.Zipkin as any) {
	makePayload(span: any): Record<string, any> {
		const payload = super.makePayload(span);
		payload.traceId = zipkinTraceId(String(span.traceID));
		payload.name = scrubText(String(payload.name ?? ""));
		const tags: Record<string, unknown> = {};
		for (const [key, value] of Object.entries<unknown>(payload.tags ?? {})) {
			if (PERSONAL_TAG.test(key) || value === undefined || value === null) continue;
			tags[key] = scrubText(String(value));
		}
		payload.tags = tags;
		return payload;
	}
}

export const PRIVATE_ZIPKIN = "PrivateZipkin";
(TracerExporters as any).register(PRIVATE_ZIPKIN, PrivateZipkinExporter);

/**
 * The broker's tracing: on, with no params, meta or response in any span; exported to Zipkin when a
 * URL is given (ZIPKIN_URL: its base, e.g. http://zipkin:9411), to the console when TRACING_EXPORTER=console,
 * otherwise nowhere. `intervalSeconds`: how often the queued spans are sent.
 */
export function tracingOptions(zipkinUrl: string | undefined, intervalSeconds = 5): TracerOptions {
	const exporter: any[] = [];
	if (zipkinUrl) exporter.push({ type: PRIVATE_ZIPKIN, options: { baseURL: zipkinUrl.replace(/\/+$/, "").replace(/\/api\/v2\/spans$/, ""), interval: intervalSeconds } });
	if (process.env.TRACING_EXPORTER === "console") exporter.push("Console");
	return {
		enabled: true,
		exporter,
		// Errors' `data` carries what a validator was given (a CPF, a name): only these fields go into a span.
		errorFields: ["name", "message", "code", "type"],
		tags: { action: { params: false, meta: false, response: false }, event: { params: false, meta: false } }
	} as TracerOptions;
}
