// Load generators: autocannon over HTTP (ours) and closed loops of async workers (the raw sides).
// @ts-expect-error autocannon ships no type declarations; the shapes used are declared below.
import autocannonUntyped from "autocannon";
import type { BenchState } from "./state";

interface Histogram { average: number; mean: number; p50: number; p99: number; total: number; min: number; max: number }
interface AutocannonResult {
	requests: Histogram;
	latency: Histogram;
	duration: number;
	errors: number;
	timeouts: number;
	non2xx: number;
	statusCodeStats: Record<string, { count: number }>;
}
export interface AutocannonInstance extends PromiseLike<AutocannonResult> {
	on(event: "response", listener: (client: unknown, status: number, bytes: number, ms: number) => void): void;
	stop(): void;
}
const autocannon = autocannonUntyped as (opts: Record<string, unknown>) => AutocannonInstance;

/** GETs with a bearer key over `connections` keep-alive connections, each request to the next path. */
export function httpLoad(state: BenchState, o: { base: string; key: string; paths: string[]; connections: number; seconds: number; latencies?: number[] }): AutocannonInstance {
	let i = 0;
	const instance = autocannon({
		url: o.base,
		connections: o.connections,
		duration: o.seconds,
		timeout: 10,
		headers: { authorization: `Bearer ${o.key}`, finalidade: "concessao_credito" },
		requests: [{
			method: "GET",
			setupRequest(req: { path: string }) {
				req.path = o.paths[i++ % o.paths.length];
				return req;
			}
		}]
	});
	if (o.latencies) {
		const latencies = o.latencies;
		instance.on("response", (_client, status, _bytes, ms) => {
			if (status >= 200 && status < 300) latencies.push(ms);
		});
	}
	state.cannon = instance;
	return instance;
}

/** `concurrency` async workers calling op back to back for `seconds`; latencies (ms) of the successes. */
export async function closedLoop(concurrency: number, seconds: number, op: (i: number) => Promise<unknown>, latencies?: number[]) {
	let next = 0;
	let errors = 0;
	const firstErrors: string[] = [];
	const t0 = process.hrtime.bigint();
	const end = t0 + BigInt(Math.round(seconds * 1e9));
	await Promise.all(Array.from({ length: concurrency }, async () => {
		while (process.hrtime.bigint() < end) {
			const start = process.hrtime.bigint();
			try {
				await op(next++);
				latencies?.push(Number(process.hrtime.bigint() - start) / 1e6);
			} catch (err) {
				errors++;
				if (firstErrors.length < 5) firstErrors.push((err as Error).message);
			}
		}
	}));
	return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, errors, firstErrors };
}
