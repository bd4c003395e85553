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
