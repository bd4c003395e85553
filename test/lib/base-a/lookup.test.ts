import { describe, expect, it } from "vitest";
import { LOOKUP_MANY_SQL, LOOKUP_SQL, payloadA, rowsByBidx } from "../../../lib/base-a/lookup";

const identity = { cpf: "52998224725", nome: "Fulano de Tal", endereco: "Rua XXXX, 123 - Centro" };
const sealed = { cpf_enc: "v1.k.cpf", nome_enc: "v1.k.nome", endereco_enc: "v1.k.end" };

describe("payloadA", () => {
	it("is null when the CPF has no row", () => {
		let opened = 0;
		expect(payloadA([], () => (opened++, identity))).toBeNull();
		expect(opened).toBe(0);
	});

	it("opens the identity once, from the first row, and lists no debt for a person without any (LEFT JOIN)", () => {
		const seen: object[] = [];
		const rows = [{ ...sealed, id: null, valor_cents: null, empresa: null, data_vencimento: null, data_pagamento: null }];
		expect(payloadA(rows, row => (seen.push(row), identity))).toEqual({ ...identity, dividas: [] });
		expect(seen).toEqual([rows[0]]);
	});

	it("keeps the debts in the query's order (oldest due date first), each as the seed's item", () => {
		const rows = [
			{ ...sealed, id: "d1", valor_cents: "10", empresa: "Loja Y", data_vencimento: "2023-05-31", data_pagamento: "2023-06-01" },
			{ ...sealed, id: "d2", valor_cents: "123456", empresa: "Banco X", data_vencimento: "2024-01-10", data_pagamento: null }
		];
		let opened = 0;
		expect(payloadA(rows, () => (opened++, identity))).toEqual({
			...identity,
			dividas: [
				{ id: "d1", valor: 0.1, empresa: "Loja Y", dataVencimento: "31/05/2023", datePagamento: "01/06/2023" },
				{ id: "d2", valor: 1234.56, empresa: "Banco X", dataVencimento: "10/01/2024", datePagamento: null }
			]
		});
		expect(opened).toBe(1);
	});
});

describe("LOOKUP_SQL", () => {
	it("finds the person by the blind index alone, as a bound parameter, debts oldest due first", () => {
		expect(LOOKUP_SQL).toMatch(/WHERE p\.cpf_bidx = \$1\s/);
		expect(LOOKUP_SQL.match(/\$\d/g)).toEqual(["$1"]);
		expect(LOOKUP_SQL).toMatch(/LEFT JOIN debts d ON d\.person_id = p\.id/);
		expect(LOOKUP_SQL).toMatch(/ORDER BY d\.data_vencimento, d\.created_at\s*$/);
		expect(LOOKUP_SQL).not.toMatch(/\bcpf\b(?!_)/);
	});
});

describe("rowsByBidx", () => {
	it("groups LOOKUP_MANY_SQL's rows per person, each group in the query's order", () => {
		const rows = [{ cpf_bidx: "a", id: "1" }, { cpf_bidx: "a", id: "2" }, { cpf_bidx: "b", id: null }];
		const grouped = rowsByBidx(rows);
		expect([...grouped.keys()]).toEqual(["a", "b"]);
		expect(grouped.get("a")!.map(r => r.id)).toEqual(["1", "2"]);
		expect(LOOKUP_MANY_SQL).toContain("= ANY($1::char(64)[])");
	});
});
