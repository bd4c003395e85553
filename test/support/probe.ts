import { randomUUID } from "node:crypto";
import { randomCpf } from "../../lib/cpf";

export interface ProbeResult {
	/** route label → status of its one request (0 = no answer). */
	statuses: Record<string, number>;
	/** The labels that did not answer their success status (or, for the report, were not complete). */
	failing: string[];
}

/**
 * One request to each route of the API (reads on a person that has a profile and movements, writes of
 * new records), through one gateway. Every route must answer its success status, and the report must
 * be complete (a part `unavailable` means a base is still missing).
 */
export async function probeRoutes(base: string, key: string, cpf: string): Promise<ProbeResult> {
	const statuses: Record<string, number> = {};
	const failing: string[] = [];
	const call = async (label: string, method: string, path: string, ok: number[], body?: string, type = "application/json", check?: (b: any) => boolean) => {
		let status = 0;
		let parsed: any = null;
		try {
			const res = await fetch(base + path, {
				method, body, signal: AbortSignal.timeout(12_000),
				headers: { authorization: `Bearer ${key}`, finalidade: "concessao_credito", ...(body === undefined ? {} : { "content-type": type }) }
			});
			const text = await res.text();
			status = res.status;
			try {
				parsed = text ? JSON.parse(text) : null;
			} catch {
				parsed = text;
			}
		} catch {
			status = 0;
		}
		statuses[label] = status;
		if (!ok.includes(status) || (check && !check(parsed))) failing.push(label);
		return parsed;
	};
	const fresh = randomCpf();
	await call("GET /health/ready", "GET", "/health/ready", [200]);
	await call("GET /persons/:cpf", "GET", `/api/v1/persons/${cpf}`, [200]);
	await call("POST /persons", "POST", "/api/v1/persons", [201], JSON.stringify({ cpf: fresh, nome: "Sonda Recuperada", endereco: "Rua P, 1" }));
	await call("PUT /persons/:cpf", "PUT", `/api/v1/persons/${fresh}`, [200], JSON.stringify({ endereco: "Rua P, 2" }));
	const debt = await call("POST /persons/:cpf/dividas", "POST", `/api/v1/persons/${fresh}/dividas`, [201], JSON.stringify({ valor: 12.34, empresa: "Banco Sonda", dataVencimento: "10/01/2025" }));
	await call("PATCH /persons/:cpf/dividas/:id", "PATCH", `/api/v1/persons/${fresh}/dividas/${debt?.id ?? randomUUID()}`, [200], JSON.stringify({ datePagamento: "11/01/2025" }));
	await call("PUT /profiles/:cpf", "PUT", `/api/v1/profiles/${fresh}`, [200, 201], JSON.stringify({ cpf: fresh, dataNascimento: "01/02/1980", endereco: "Rua P 2", fonteDeRenda: "Assalariado", bens: [] }));
	await call("GET /profiles/:cpf", "GET", `/api/v1/profiles/${cpf}`, [200]);
	await call("GET /profiles/:cpf/score", "GET", `/api/v1/profiles/${cpf}/score`, [200]);
	await call("GET /ml/features", "GET", "/api/v1/ml/features", [200]);
	await call("POST /transactions", "POST", "/api/v1/transactions", [202], JSON.stringify({ cpf: fresh, tipo: "pix", valor: 5, data: "2025-01-02", id: `probe-${randomUUID()}` }));
	await call("GET /activity/:cpf", "GET", `/api/v1/activity/${cpf}`, [200]);
	await call("GET /activity/:cpf/movements", "GET", `/api/v1/activity/${cpf}/movements`, [200]);
	await call("GET /reports/:cpf", "GET", `/api/v1/reports/${cpf}`, [200], undefined, undefined, b => b?.complete === true);
	await call("GET /privacy/:cpf", "GET", `/api/v1/privacy/${cpf}`, [200]);
	await call("GET /audit", "GET", `/api/v1/audit?cpf=${cpf}`, [200]);
	return { statuses, failing };
}

/**
 * Probes every gateway until every route answers 2xx on all of them, or the time is up. Returns how
 * long it took from `since` and the last probe of each gateway.
 */
export async function untilRecovered(bases: string[], key: string, cpf: string, since: number, timeoutMs: number): Promise<{ recoveredMs: number | null; last: Record<string, ProbeResult>; seen: string[] }> {
	const until = Date.now() + timeoutMs;
	const last: Record<string, ProbeResult> = {};
	/** Every failure seen on the way, as "+<ms since> <route> <status>". */
	const seen: string[] = [];
	for (;;) {
		for (const base of bases) {
			last[base] = await probeRoutes(base, key, cpf);
			for (const label of last[base].failing) seen.push(`+${Date.now() - since}ms ${label} ${last[base].statuses[label]}`);
		}
		if (Object.values(last).every(p => p.failing.length === 0)) return { recoveredMs: Date.now() - since, last, seen };
		if (Date.now() > until) return { recoveredMs: null, last, seen };
		await new Promise(r => setTimeout(r, 1000));
	}
}
