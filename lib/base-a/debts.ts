import { formatDate } from "../dates";
import { fromCents } from "../money";

/** A debts row (or the debt columns of a join) → the seed's `dividas[]` item, plus its id. */
export function debtView(row: Record<string, any>) {
	return {
		id: row.id,
		valor: fromCents(row.valor_cents),
		empresa: row.empresa,
		dataVencimento: formatDate(row.data_vencimento),
		datePagamento: formatDate(row.data_pagamento)
	};
}
