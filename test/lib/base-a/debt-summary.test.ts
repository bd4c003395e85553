import { randomBytes, randomUUID } from "node:crypto";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { DEBT_SUMMARY_SQL, type DebtSummaryRow, debtSummaryOf } from "../../../lib/base-a/debt-summary";
import { type DebtFacts, summariseDebts } from "../../../lib/credit-score/inputs";
import { appQuery, ownerQuery } from "../../support/db";

const TODAY = "2026-11-25";
const isoDay = (offset: number) => new Date(Date.parse(TODAY) + offset * 86_400_000).toISOString().slice(0, 10);
const debt: fc.Arbitrary<DebtFacts> = fc.record({
	valorCents: fc.integer({ min: 0, max: 5_000_000 }),
	due: fc.integer({ min: -1095, max: 365 }),
	paid: fc.option(fc.integer({ min: -1200, max: 30 }), { nil: null })
}).map(d => ({ valorCents: d.valorCents, dataVencimento: isoDay(d.due), dataPagamento: d.paid === null ? null : isoDay(d.paid) }));

const made: string[] = [];
afterAll(async () => {
	if (made.length) await ownerQuery("DELETE FROM persons WHERE id = ANY($1::uuid[])", [made]);
});

describe("DEBT_SUMMARY_SQL (real PostgreSQL)", () => {
	it("gives, for a whole set of persons in one query, the summary summariseDebts gives for each", async () => {
		const people = fc.sample(fc.array(debt, { maxLength: 12 }), { numRuns: 40, seed: 14 }).map(debts => ({ id: randomUUID(), bidx: randomBytes(32).toString("hex"), debts }));
		for (const p of people) {
			made.push(p.id);
			await ownerQuery("INSERT INTO persons (id, cpf_bidx, cpf_enc, nome_enc, endereco_enc) VALUES ($1, $2, 'x', 'x', 'x')", [p.id, p.bidx]);
			for (const d of p.debts) {
				await ownerQuery("INSERT INTO debts (id, person_id, valor_cents, empresa, data_vencimento, data_pagamento) VALUES ($1, $2, $3, 'E', $4, $5)",
					[randomUUID(), p.id, d.valorCents, d.dataVencimento, d.dataPagamento]);
			}
		}
		const unknown = randomBytes(32).toString("hex");
		const rows = await appQuery<DebtSummaryRow>(DEBT_SUMMARY_SQL, [[...people.map(p => p.bidx), unknown], TODAY]);
		expect(rows).toHaveLength(people.length);
		const byBidx = new Map(rows.map(r => [r.cpf_bidx, debtSummaryOf(r)]));
		for (const p of people) expect(byBidx.get(p.bidx), JSON.stringify(p.debts)).toEqual(summariseDebts(p.debts, TODAY));
		expect(people.some(p => summariseDebts(p.debts, TODAY).overdue > 1)).toBe(true);
	});
});
