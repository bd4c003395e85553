import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { isIP } from "node:net";
import { type EgressPolicy, guardedLookup, isForbiddenAddress } from "./ssrf";

/** How long a receiver has to answer, and how much of its answer is read. */
export const SEND_TIMEOUT_MS = 10_000;
const MAX_RESPONSE_BYTES = 16 * 1024;

export interface SendOutcome {
	ok: boolean;
	status?: number;
	error?: string;
}

/**
 * One POST of a delivery: the address checked where it is connected to (guardedLookup), no redirect
 * followed (a 3xx is a failure), a short timeout, at most 16 KiB of the answer read.
 */
export function post(url: string, headers: Record<string, string>, body: string, policy: EgressPolicy, signal?: AbortSignal): Promise<SendOutcome> {
	return new Promise(resolve => {
		let target: URL;
		try {
			target = new URL(url);
		} catch {
			return resolve({ ok: false, error: "bad url" });
		}
		const https = target.protocol === "https:";
		if (!https && (target.protocol !== "http:" || policy.httpsOnly)) return resolve({ ok: false, error: "scheme refused" });
		const host = target.hostname.replace(/^\[|\]$/g, "");
		// A literal address is connected to without a lookup: it is checked here instead.
		if (isIP(host) && !policy.allowPrivate && isForbiddenAddress(host)) return resolve({ ok: false, error: "address refused" });
		const req = (https ? httpsRequest : httpRequest)(target, {
			method: "POST", lookup: guardedLookup(policy) as never, timeout: SEND_TIMEOUT_MS, agent: false, signal,
			headers: { ...headers, "content-type": "application/json", "content-length": Buffer.byteLength(body), "user-agent": "credit-mesh-webhooks/1" }
		}, res => {
			let read = 0;
			res.on("data", (chunk: Buffer) => {
				read += chunk.length;
				if (read > MAX_RESPONSE_BYTES) res.destroy();
			});
			const done = () => resolve({ ok: (res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300, status: res.statusCode });
			res.on("end", done);
			res.on("close", done);
			res.on("error", done);
		});
		// `timeout` is the socket's idle time; this bounds the whole exchange (a receiver answering drop by drop).
		const deadline = setTimeout(() => req.destroy(Object.assign(new Error("timeout"), { code: "ETIMEDOUT" })), SEND_TIMEOUT_MS);
		req.on("close", () => clearTimeout(deadline));
		req.on("timeout", () => req.destroy(Object.assign(new Error("timeout"), { code: "ETIMEDOUT" })));
		req.on("error", (err: NodeJS.ErrnoException) => resolve({ ok: false, error: err.code ?? err.name }));
		req.end(body);
	});
}

/** The wait before attempt `attempts + 1`: exponential from `baseMs` (1 s), at most `maxMs` (an hour), with full jitter on its upper half. */
export function backoffMs(attempts: number, baseMs = 1000, random = Math.random, maxMs = 3600_000): number {
	const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempts, 22));
	return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/** Deliveries are retried for this long after their event, then dead-lettered. */
export const RETRY_FOR_MS = 24 * 3600_000;
