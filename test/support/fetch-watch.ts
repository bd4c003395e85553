/** A request of this process that got no HTTP answer: refused, reset, closed mid-answer. */
export interface ConnectionFailure {
	/** The server it was sent to, e.g. http://127.0.0.1:41234 */
	origin: string;
	/** The socket error's code (ECONNREFUSED, ECONNRESET, UND_ERR_SOCKET…) or the error's name. */
	code: string;
	at: number;
}

/** A request that got no answer within its caller's time limit (AbortSignal.timeout). */
export interface TimedOut {
	path: string;
	at: number;
}

/** A 503 answer seen by this process, with its Retry-After header (null when absent). */
export interface Unavailable {
	path: string;
	retryAfter: string | null;
	at: number;
}

/**
 * Watches the global fetch (which bench/workload.ts and the probes use) and records every request
 * that failed below HTTP, so a test can say which gateway refused or reset connections, and every
 * 503 with its Retry-After (the workload keeps neither: it retries them). Requests
 * aborted by their caller (a stopped run, a client timeout) are not connection failures.
 */
export function watchFetch(): {
	failures: ConnectionFailure[];
	unavailable: Unavailable[];
	timedOut: TimedOut[];
	since(t: number): { failures: ConnectionFailure[]; unavailable: Unavailable[]; timedOut: TimedOut[] };
	restore(): void;
} {
	const original = globalThis.fetch;
	const failures: ConnectionFailure[] = [];
	const unavailable: Unavailable[] = [];
	const timedOut: TimedOut[] = [];
	const pathOf = (input: any) => {
		try {
			return new URL(typeof input === "string" ? input : input instanceof URL ? input.href : input?.url).pathname;
		} catch {
			return "unknown";
		}
	};
	globalThis.fetch = async function watched(input: any, init?: any) {
		try {
			const res = await original(input, init);
			if (res.status === 503) unavailable.push({ path: new URL(res.url).pathname, retryAfter: res.headers.get("retry-after"), at: Date.now() });
			return res;
		} catch (err: any) {
			if (err?.name === "TimeoutError") timedOut.push({ path: pathOf(input), at: Date.now() });
			else if (err?.name !== "AbortError") {
				const url = typeof input === "string" ? input : input instanceof URL ? input.href : input?.url;
				let origin = "unknown";
				try {
					origin = new URL(url).origin;
				} catch {
					// not a URL: keep "unknown"
				}
				failures.push({ origin, code: String(err?.cause?.code ?? err?.code ?? err?.cause?.name ?? err?.name), at: Date.now() });
			}
			throw err;
		}
	} as typeof fetch;
	return {
		failures,
		unavailable,
		timedOut,
		since: t => ({ failures: failures.filter(f => f.at >= t), unavailable: unavailable.filter(u => u.at >= t), timedOut: timedOut.filter(x => x.at >= t) }),
		restore: () => void (globalThis.fetch = original)
	};
}
