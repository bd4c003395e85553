import { debtView } from "./debts";

// One round trip: the person and its debts, oldest due date first.
export const LOOKUP_SQL = `
	SELECT p.cpf_enc, p.nome_enc, p.endereco_enc,
	       d.id, d.valor_cents, d.empresa, d.data_vencimento, d.data_pagamento
	  FROM persons p LEFT JOIN debts d ON d.person_id = p.id
	 WHERE p.cpf_bidx = $1
	 ORDER BY d.data_vencimento, d.created_at`;

/** Rows of LOOKUP_SQL → payload A, with `open` decrypting the identity of the first row; null when absent. */
export function payloadA(rows: Record<string, any>[], open: (row: Record<string, any>) => Record<string, string>) {
	if (rows.length === 0) return null;
	return { ...open(rows[0]), dividas: rows.filter(r => r.id).map(debtView) };
}

// The same for a chunk of a batch (POST /reports/batch): every person of the set (`= ANY`) with its debts, by blind index.
export const LOOKUP_MANY_SQL = `
	SELECT p.cpf_bidx, p.cpf_enc, p.nome_enc, p.endereco_enc,
	       d.id, d.valor_cents, d.empresa, d.data_vencimento, d.data_pagamento
	  FROM persons p LEFT JOIN debts d ON d.person_id = p.id
	 WHERE p.cpf_bidx = ANY($1::char(64)[])
	 ORDER BY p.cpf_bidx, d.data_vencimento, d.created_at`;

/** Rows of LOOKUP_MANY_SQL grouped by blind index, each group in payload A's order. */
export function rowsByBidx(rows: Record<string, any>[]): Map<string, Record<string, any>[]> {
	const out = new Map<string, Record<string, any>[]>();
	for (const row of rows) {
		const key = String(row.cpf_bidx);
		const group = out.get(key);
		if (group) group.push(row);
		else out.set(key, [row]);
	}
	return out;
}
