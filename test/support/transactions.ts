import { activitySubject } from "./keys";
import { api, type ApiResponse, type Mesh } from "./mesh";

/** POST /transactions with a JSON body: one movement or an array of them. */
export function postTransactions(mesh: Mesh, body: unknown, headers: Record<string, string> = {}): Promise<ApiResponse> {
	return api(mesh, "POST", "/api/v1/transactions", { body, headers });
}

/** POST /transactions with NDJSON, one line each. */
export function postNdjson(mesh: Mesh, lines: string[]): Promise<ApiResponse> {
	return api(mesh, "POST", "/api/v1/transactions", { rawBody: lines.join("\n"), headers: { "content-type": "application/x-ndjson" } });
}

/** The Elasticsearch query of one person's documents: by Base C's pseudonym of the CPF. */
export function bySubject(cpf: string): object {
	return { term: { subject: activitySubject(cpf) } };
}
