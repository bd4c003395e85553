import type { DebtSummary } from "../credit-score/inputs";

/**
 * The debt summaries of a set of persons (by blind index, $1) on a day ($2, ISO): one row per person
 * known to Base A, in one round trip whatever the set's size. The same definitions as
 * lib/credit-score/inputs.ts's summariseDebts: overdue = not settled and due before the day; settled
 * on time = paid on or before the due date.
 */
export const DEBT_SUMMARY_SQL = `
	SELECT p.cpf_bidx,
	       count(d.id) FILTER (WHERE d.data_pagamento IS NULL) AS open,
	       count(d.id) FILTER (WHERE d.data_pagamento IS NULL AND d.data_vencimento < $2::date) AS overdue,
	       coalesce(sum(d.valor_cents) FILTER (WHERE d.data_pagamento IS NULL AND d.data_vencimento < $2::date), 0) AS overdue_cents,
	       coalesce(max($2::date - d.data_vencimento) FILTER (WHERE d.data_pagamento IS NULL AND d.data_vencimento < $2::date), 0) AS max_days_overdue,
	       count(d.id) FILTER (WHERE d.data_pagamento <= d.data_vencimento) AS paid_on_time,
	       count(d.id) FILTER (WHERE d.data_pagamento > d.data_vencimento) AS paid_late
	  FROM persons p LEFT JOIN debts d ON d.person_id = p.id
	 WHERE p.cpf_bidx = ANY($1::char(64)[])
	 GROUP BY p.cpf_bidx`;

/** A row of DEBT_SUMMARY_SQL (pg gives counts and sums as strings). */
export type DebtSummaryRow = Record<"cpf_bidx" | "open" | "overdue" | "overdue_cents" | "max_days_overdue" | "paid_on_time" | "paid_late", string | number>;

export function debtSummaryOf(row: DebtSummaryRow): DebtSummary {
	return {
		open: Number(row.open),
		overdue: Number(row.overdue),
		overdueCents: Number(row.overdue_cents),
		maxDaysOverdue: Number(row.max_days_overdue),
		paidOnTime: Number(row.paid_on_time),
		paidLate: Number(row.paid_late)
	};
}
