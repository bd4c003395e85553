// The mesh's HTTP API as the benchmarks call it: a request with a bearer key, the status expected, and
// the API consumer made for the load and revoked after it.
import type { BenchState } from "./state";

interface Reply { status: number; body: any }

export async function call(base: string, method: string, urlPath: string, key: string, body?: unknown): Promise<Reply> {
	const res = await fetch(base + urlPath, {
		method,
		headers: { authorization: `Bearer ${key}`, finalidade: "concessao_credito", ...(body === undefined ? {} : { "content-type": "application/json" }) },
		body: body === undefined ? undefined : JSON.stringify(body),
		signal: AbortSignal.timeout(15_000)
	});
	return reply(res);
}

/** A response's status and body, parsed as JSON when it is JSON. */
async function reply(res: Response): Promise<Reply> {
	const text = await res.text();
	let parsed: unknown = text;
	try {
		parsed = text ? JSON.parse(text) : null;
	} catch {
		// not JSON: keep the text
	}
	return { status: res.status, body: parsed };
}

/** POSTs a body as it is (NDJSON, say) under the given media type, with a bearer key. */
export async function postText(base: string, urlPath: string, key: string, body: string, contentType: string, timeoutMs = 60_000): Promise<Reply> {
	const res = await fetch(base + urlPath, {
		method: "POST",
		headers: { authorization: `Bearer ${key}`, "content-type": contentType },
		body,
		signal: AbortSignal.timeout(timeoutMs)
	});
	return reply(res);
}

export function expect(reply: Reply, status: number, what: string): any {
	if (reply.status !== status) throw new Error(`${what}: expected ${status}, got ${reply.status} ${JSON.stringify(reply.body).slice(0, 300)}`);
	return reply.body;
}

/**
 * An API consumer for the load, with only the scopes it needs and a rate limit of 1 000 000/min so
 * that rate limiting never interferes; its key exists only in this process's memory.
 */
export async function createConsumer(state: BenchState, base: string, adminKey: string, name: string, scopes: string[]): Promise<{ id: string; key: string }> {
	const consumer = expect(await call(base, "POST", "/api/v1/consumers", adminKey, { name, scopes, rateLimit: 1_000_000 }), 201, "POST /api/v1/consumers");
	state.consumer = { base, id: consumer.id, adminKey };
	return consumer;
}

/** Revokes the benchmark's API consumer. */
export async function revokeConsumer(state: BenchState): Promise<void> {
	const c = state.consumer;
	state.consumer = undefined;
	if (!c) return;
	const res = await call(c.base, "DELETE", `/api/v1/consumers/${c.id}`, c.adminKey).catch(() => null);
	if (res?.status !== 204) console.warn(`could not revoke the benchmark's API consumer ${c.id} (${res?.status ?? "no answer"})`);
}
