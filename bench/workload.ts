// A mixed workload through the HTTP gateway: closed-loop clients, each picking its next request from a
// weighted mix with its own PRNG (deterministic from the seed), against one or more gateways. Used by
// bench/soak.ts and by the fault-injection test, which kills processes while it runs and then counts
// the writes the server acknowledged in each base.
//
// Data comes from scripts/seed.ts's generator (person i of the seed), so a run with a given seed sends
// the same persons, debts, profiles and movements; every write carries an Idempotency-Key of its own,
// sent again on each of its retries, and every movement a stable id, so a retry never writes twice.
// A write whose final outcome is not a success (a connection cut after the server committed, say) may
// still be stored: the acknowledged writes are a lower bound of what each base holds, not all of it.
import { createHash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { generatePerson, mulberry32, type SeedPerson } from "../scripts/seed";
import { percentiles } from "./lib/stats";

export interface WorkloadOptions {
	/**
	 * Gateway base URLs (http://127.0.0.1:PORT); requests round-robin; a connection error or a timeout is
	 * retried on the next base, up to max(3, 2 × bases) attempts, 50 ms × n apart (1 s at most).
	 */
	bases: string[];
	/** Bearer key holding every scope the mix needs (WORKLOAD_SCOPES). */
	key: string;
	/** Concurrent closed-loop clients. */
	clients: number;
	/** Stop issuing requests after this long (the pool seeding included)… */
	durationMs: number;
	/** …or after this many requests (the pool seeding included), whichever comes first. */
	maxRequests?: number;
	/** Default: random (the seed used is in the result). Persons 0..poolSize-1 of the seed make the pool. */
	seed?: number;
	/**
	 * Retries of a 503 (after Retry-After, else 200 ms doubling, capped at maxDelayMs), with the same
	 * Idempotency-Key; a 409 IDEMPOTENCY_IN_PROGRESS (a retry arriving while the first attempt still runs)
	 * is retried the same way. Default { attempts: 5, maxDelayMs: 2000 }; attempts 0 = every 503 is final.
	 */
	retry503?: { attempts: number; maxDelayMs: number };
	/** Stops the run: no new request starts; requests in flight are abandoned and not counted. */
	signal?: AbortSignal;
	/** Persons created (with profile and movements) before the mix starts; reads target them. Default max(8, clients). */
	poolSize?: number;
	/** Per-attempt timeout (default 15 000 ms); a timeout is retried like a connection error. */
	timeoutMs?: number;
	/** Relative weights of the routes (default DEFAULT_MIX); 0 leaves a route out. */
	mix?: Partial<Record<RouteName, number>>;
	/** How many unexpected answers to keep (default 50). */
	keepUnexpected?: number;
}

export interface RouteStats {
	route: string;
	requests: number;
	/** Final answers that were not the route's success status (after retries); connection failures included. */
	errors: number;
	/** Final answer status → count; "network" or "timeout" when no answer came after the retries. */
	statuses: Record<string, number>;
	/** Requests that needed at least one retry (503, connection error, timeout, idempotency key in progress). */
	retried: number;
	/** Why attempts were retried: "503", "409 in progress", "network", "timeout" → attempts. */
	retryCauses: Record<string, number>;
	/** Latency of the successful requests, first attempt to final answer (retries included), ms. */
	p50Ms: number;
	p99Ms: number;
	/** Requests (all outcomes) per second of the run. */
	perSecond: number;
}

/** Every write the server acknowledged (201/200/202), to be counted in each base afterwards. */
export interface Acknowledged {
	persons: string[];
	debts: { cpf: string; id: string }[];
	profiles: string[];
	movements: { cpf: string; id: string }[];
}

export interface WorkloadResult {
	elapsedMs: number;
	routes: RouteStats[];
	acknowledged: Acknowledged;
	/** The first keepUnexpected non-success final answers, bodies truncated to 300 characters. */
	unexpected: { route: string; status: number; body: string }[];
	/** The seed used (given or drawn). */
	seed: number;
}

export type RouteName = "lookup" | "createPerson" | "createDebt" | "getProfile" | "putProfile" | "score" | "transactions" | "activity" | "report";

/** Route name → method and path pattern (lib/gateway/routes.ts) and the statuses that mean success. */
export const WORKLOAD_ROUTES: Record<RouteName, { label: string; ok: readonly number[] }> = {
	lookup: { label: "GET /persons/:cpf", ok: [200] },
	createPerson: { label: "POST /persons", ok: [201] },
	createDebt: { label: "POST /persons/:cpf/dividas", ok: [201] },
	getProfile: { label: "GET /profiles/:cpf", ok: [200] },
	putProfile: { label: "PUT /profiles/:cpf", ok: [200, 201] },
	score: { label: "GET /profiles/:cpf/score", ok: [200] },
	transactions: { label: "POST /transactions", ok: [202] },
	activity: { label: "GET /activity/:cpf", ok: [200] },
	report: { label: "GET /reports/:cpf", ok: [200] }
};

export const DEFAULT_MIX: Record<RouteName, number> = {
	lookup: 20, createPerson: 6, createDebt: 8, getProfile: 12, putProfile: 8, score: 12, transactions: 10, activity: 12, report: 10
};

/** The scopes the key must hold. */
export const WORKLOAD_SCOPES = [
	"persons:read", "persons:write", "debts:write", "profiles:read", "profiles:write", "score:read",
	"transactions:write", "activity:read", "reports:read"
];

const PREFIX = "/api/v1";
const JSON_TYPE = { "content-type": "application/json" };
/** Indices of the generator's persons used only for their debts and movements (never created). */
const DEBT_SOURCE = 10_000_000;
const MOVEMENT_SOURCE = 20_000_000;

interface Request {
	route: RouteName;
	method: string;
	path: string;
	body?: string;
	headers?: Record<string, string>;
	/** Called with the parsed body of a success. */
	onOk?: (body: any) => void;
}

/**
 * The Idempotency-Key of a write: one per logical request (its number in the run), sent again on each of
 * its retries. (Not the body alone: two clients may send the same PUT at once, and the second would get
 * 409 IDEMPOTENCY_IN_PROGRESS.)
 */
function idempotencyKey(seed: number, n: number, method: string, path: string, body: string): string {
	return `wl.${createHash("sha256").update(`${seed}.${n} ${method} ${path}\n${body}`).digest("base64url").slice(0, 40)}`;
}

/** Network-level failures (refused, reset, closed mid-answer): the request may be retried on another base. */
function failureKind(err: unknown): "timeout" | "network" {
	const e = err as { name?: string; cause?: { name?: string } };
	return e?.name === "TimeoutError" || e?.cause?.name === "TimeoutError" ? "timeout" : "network";
}

export async function runWorkload(o: WorkloadOptions): Promise<WorkloadResult> {
	if (o.bases.length === 0) throw new Error("runWorkload: no base URL");
	if (o.clients < 1) throw new Error("runWorkload: clients must be >= 1");
	const seed = o.seed ?? Math.floor(Math.random() * 2 ** 31);
	const retry = o.retry503 ?? { attempts: 5, maxDelayMs: 2000 };
	const timeoutMs = o.timeoutMs ?? 15_000;
	const keep = o.keepUnexpected ?? 50;
	const mix = { ...DEFAULT_MIX, ...o.mix };
	const routes = (Object.keys(mix) as RouteName[]).filter(r => mix[r] > 0);
	const totalWeight = routes.reduce((a, r) => a + mix[r], 0);
	const poolSize = o.poolSize ?? Math.max(8, o.clients);
	const started = Date.now();
	const deadline = started + o.durationMs;
	const maxRequests = o.maxRequests ?? Infinity;

	const acknowledged: Acknowledged = { persons: [], debts: [], profiles: [], movements: [] };
	const unexpected: WorkloadResult["unexpected"] = [];
	const stats = new Map<RouteName, { requests: number; errors: number; retried: number; retryCauses: Record<string, number>; statuses: Record<string, number>; latencies: number[] }>();
	const statsOf = (r: RouteName) => {
		let s = stats.get(r);
		if (!s) stats.set(r, (s = { requests: 0, errors: 0, retried: 0, retryCauses: {}, statuses: {}, latencies: [] }));
		return s;
	};

	// The persons the server acknowledged: index in the generator → person; and who has a profile.
	const persons: SeedPerson[] = [];
	const withProfile: SeedPerson[] = [];
	const profiled = new Set<SeedPerson>();
	/** Pool persons whose activity (movements) is searchable: the targets of GET /activity. */
	const withActivity: SeedPerson[] = [];
	let nextPerson = 0;
	let nextDebt = 0;
	let nextBatch = 0;
	let issued = 0;
	let nextBase = 0;
	const stopped = () => o.signal?.aborted === true || Date.now() >= deadline || issued >= maxRequests;

	/** One logical request: retried on 503 / connection errors; returns the final status (0 = no answer) and its text. */
	async function send(req: Request): Promise<{ status: number; text: string } | null> {
		issued++;
		const t0 = performance.now();
		const s = statsOf(req.route);
		let retried = false;
		let final: { status: number; text: string; kind?: string };
		const networkAttempts = Math.max(3, 2 * o.bases.length);
		// Round-robin across requests; a request's own retries go on from its base to the next ones.
		const first = nextBase++;
		for (let attempt = 0, retries503 = 0, networkErrors = 0, refusals = 0; ; attempt++) {
			if (o.signal?.aborted) return null;
			const base = o.bases[(first + attempt) % o.bases.length];
			let delayMs = 0;
			try {
				const signal = o.signal ? AbortSignal.any([o.signal, AbortSignal.timeout(timeoutMs)]) : AbortSignal.timeout(timeoutMs);
				const res = await fetch(base + PREFIX + req.path, {
					method: req.method, body: req.body, signal, redirect: "error",
					headers: { authorization: `Bearer ${o.key}`, finalidade: "concessao_credito", ...req.headers }
				});
				const text = await res.text();
				final = { status: res.status, text };
				const inProgress = res.status === 409 && text.includes("IDEMPOTENCY_IN_PROGRESS");
				if ((res.status === 503 || inProgress) && retries503 < retry.attempts) {
					retries503++;
					const cause = inProgress ? "409 in progress" : "503";
					s.retryCauses[cause] = (s.retryCauses[cause] ?? 0) + 1;
					const after = Number(res.headers.get("retry-after"));
					delayMs = Math.min(retry.maxDelayMs, Number.isFinite(after) && after > 0 ? after * 1000 : 100 * 2 ** retries503);
				} else break;
			} catch (err) {
				if (o.signal?.aborted) return null;
				const kind = failureKind(err);
				const cause = (err as any)?.cause;
				const code = cause?.code ?? cause?.errors?.[0]?.code;
				final = { status: 0, text: `${kind}: ${(err as Error).message}${code ? ` (${code})` : ""}`, kind };
				// A refused connection means no gateway listens there (a client behind a load balancer never sees
				// it): it moves the request on to the next gateway without using up one of its attempts, up to
				// a bound of its own so a mesh with no gateway left still ends.
				const refused = code === "ECONNREFUSED" && ++refusals <= networkAttempts * o.bases.length;
				if (!refused && ++networkErrors >= networkAttempts) break;
				s.retryCauses[kind] = (s.retryCauses[kind] ?? 0) + 1;
				delayMs = Math.min(1000, 50 * networkErrors);
			}
			retried = true;
			await sleep(delayMs);
		}
		s.requests++;
		if (retried) s.retried++;
		const key = final.status === 0 ? final.kind! : String(final.status);
		s.statuses[key] = (s.statuses[key] ?? 0) + 1;
		if (WORKLOAD_ROUTES[req.route].ok.includes(final.status)) {
			s.latencies.push(performance.now() - t0);
			if (req.onOk) {
				let body: unknown = null;
				try {
					body = final.text ? JSON.parse(final.text) : null;
				} catch {
					// not JSON
				}
				req.onOk(body);
			}
		} else {
			s.errors++;
			if (unexpected.length < keep) unexpected.push({ route: WORKLOAD_ROUTES[req.route].label, status: final.status, body: final.text.slice(0, 300) });
		}
		return final;
	}

	// ------------------------------------------------------------ the requests of the mix

	const createPerson = (p: SeedPerson, then?: () => void): Request =>
		write("createPerson", "POST", "/persons", { cpf: p.cpf, nome: p.nome, endereco: p.endereco }, () => {
			acknowledged.persons.push(p.cpf);
			persons.push(p);
			then?.();
		});
	const putProfile = (p: SeedPerson, profile = p.profile): Request =>
		write("putProfile", "PUT", `/profiles/${p.cpf}`, { cpf: p.cpf, ...profile }, () => {
			if (!profiled.has(p)) {
				profiled.add(p);
				withProfile.push(p);
				acknowledged.profiles.push(p.cpf);
			}
		});
	const transactions = (p: SeedPerson, count: number): Request => {
		const n = nextBatch++;
		const source = generatePerson(seed, MOVEMENT_SOURCE + n).movements.slice(0, count);
		const movements = source.map((m, j) => ({ ...m, cpf: p.cpf, id: `wl${seed}.t${n}.m${j}` }));
		return write("transactions", "POST", "/transactions", movements.map(m => JSON.stringify(m)).join("\n"),
			() => acknowledged.movements.push(...movements.map(m => ({ cpf: m.cpf, id: m.id }))),
			{ "content-type": "application/x-ndjson" });
	};
	const createDebt = (p: SeedPerson): Request => {
		let debt: SeedPerson["dividas"][number] | undefined;
		while (!debt) debt = generatePerson(seed, DEBT_SOURCE + nextDebt++).dividas[0];
		return write("createDebt", "POST", `/persons/${p.cpf}/dividas`, debt, body => {
			if (typeof body?.id === "string") acknowledged.debts.push({ cpf: p.cpf, id: body.id });
		});
	};
	const read = (route: RouteName, path: string): Request => ({ route, method: "GET", path });
	let writes = 0;
	function write(route: RouteName, method: string, path: string, payload: unknown, onOk?: (body: any) => void, contentType = JSON_TYPE): Request {
		const body = typeof payload === "string" ? payload : JSON.stringify(payload);
		return { route, method, path, body, headers: { ...contentType, "idempotency-key": idempotencyKey(seed, writes++, method, path, body) }, onOk };
	}

	function next(rnd: () => number): Request {
		let x = rnd() * totalWeight;
		let route = routes[routes.length - 1];
		for (const r of routes) {
			if ((x -= mix[r]) < 0) {
				route = r;
				break;
			}
		}
		const any = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)];
		const person = any(persons);
		const withOne = withProfile.length ? any(withProfile) : person;
		switch (route) {
			case "lookup": return read(route, `/persons/${person.cpf}`);
			case "createPerson": return createPerson(generatePerson(seed, nextPerson++));
			case "createDebt": return createDebt(person);
			case "getProfile": return read(route, `/profiles/${withOne.cpf}`);
			case "putProfile": {
				// A new profile for a person without one, else a replacement (another person's data).
				const profile = rnd() < 0.5 ? person.profile : generatePerson(seed, MOVEMENT_SOURCE + Math.floor(rnd() * 1e6)).profile;
				return putProfile(person, profile);
			}
			case "score": return read(route, `/profiles/${withOne.cpf}/score`);
			case "transactions": return transactions(any(withActivity.length ? withActivity : persons), 1 + Math.floor(rnd() * 5));
			case "activity": return read(route, `/activity/${any(withActivity.length ? withActivity : persons).cpf}`);
			case "report": return read(route, `/reports/${withOne.cpf}`);
		}
	}

	// ------------------------------------------------------------ the pool, then the mix

	// The pool: persons 0..poolSize-1, each with its profile and a batch of movements, `clients` at a time.
	const pool = Array.from({ length: poolSize }, () => generatePerson(seed, nextPerson++));
	let poolNext = 0;
	await Promise.all(Array.from({ length: Math.min(o.clients, poolSize) }, async () => {
		while (poolNext < pool.length && !stopped()) {
			const p = pool[poolNext++];
			let created = false;
			await send(createPerson(p, () => (created = true)));
			if (!created || stopped()) continue;
			await send(putProfile(p));
			if (!stopped()) await send(transactions(p, 5));
		}
	}));
	// Movements become searchable asynchronously (JetStream → Elasticsearch): GET /activity of a pool
	// person answers 404 until then, so the mix reads the activity of persons seen to have one.
	// (These polls are not counted in the statistics; a third of the run at most, 15 s at most. Should
	// none become searchable, activity reads go to any person, and their 404s count as errors.)
	const pollUntil = Math.min(deadline, Date.now() + Math.min(15_000, o.durationMs / 3));
	const pending = persons.filter(p => acknowledged.movements.some(m => m.cpf === p.cpf));
	while (pending.length && Date.now() < pollUntil && !o.signal?.aborted) {
		for (const p of [...pending]) {
			const res = await fetch(`${o.bases[0]}${PREFIX}/activity/${p.cpf}`, { headers: { authorization: `Bearer ${o.key}` }, signal: AbortSignal.timeout(5000) }).catch(() => null);
			await res?.text();
			if (res?.status === 200) {
				withActivity.push(p);
				pending.splice(pending.indexOf(p), 1);
			}
		}
		if (pending.length) await sleep(250);
	}

	if (persons.length > 0) {
		await Promise.all(Array.from({ length: o.clients }, async (_, c) => {
			const rnd = mulberry32((seed ^ Math.imul(c + 1, 0x9e3779b1)) >>> 0);
			while (!stopped()) await send(next(rnd));
		}));
	}

	const elapsedMs = Date.now() - started;
	const routeStats: RouteStats[] = (Object.keys(WORKLOAD_ROUTES) as RouteName[]).filter(r => stats.has(r)).map(r => {
		const s = stats.get(r)!;
		const { p50, p99 } = percentiles(s.latencies);
		return {
			route: WORKLOAD_ROUTES[r].label, requests: s.requests, errors: s.errors, statuses: s.statuses, retried: s.retried, retryCauses: s.retryCauses,
			p50Ms: p50, p99Ms: p99, perSecond: s.requests / (elapsedMs / 1000)
		};
	});
	return { elapsedMs, routes: routeStats, acknowledged, unexpected, seed };
}
