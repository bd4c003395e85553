import { describe, expect, it } from "vitest";
import { debtView } from "../../../lib/base-a/debts";

describe("debtView", () => {
	it("turns a debts row into the seed's dividas item: money from cents, DD/MM/YYYY dates, and nothing else", () => {
		const row = { id: "6f1c1f8e-4a53-4c1e-9a4e-0d1b2a3c4d5e", person_id: "p", valor_cents: "123456", empresa: "Banco X", data_vencimento: "2024-01-10", data_pagamento: null, recorded_by: "consumer-1", created_at: new Date() };
		expect(debtView(row)).toEqual({ id: row.id, valor: 1234.56, empresa: "Banco X", dataVencimento: "10/01/2024", datePagamento: null });
	});

	it("reads cents as pg returns BIGINT (a string) or as a number, and dates as strings or Dates", () => {
		expect(debtView({ id: "a", valor_cents: 10, empresa: "E", data_vencimento: new Date("2023-05-31T00:00:00Z"), data_pagamento: "2023-06-01" }))
			.toMatchObject({ valor: 0.1, dataVencimento: "31/05/2023", datePagamento: "01/06/2023" });
		expect(debtView({ id: "b", valor_cents: "0", empresa: "E", data_vencimento: "2024-02-29", data_pagamento: undefined }))
			.toMatchObject({ valor: 0, dataVencimento: "29/02/2024", datePagamento: null });
		expect(debtView({ id: "c", valor_cents: "10000000000000", empresa: "E", data_vencimento: "2024-01-01", data_pagamento: null }).valor).toBe(100_000_000_000);
	});
});
