import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BANDS, MAX_REASONS, MODEL_VERSION, scoreCredit } from "../../../lib/credit-score/scorecard";
import { CHARACTERISTICS, maxPoints } from "../../../lib/credit-score/characteristics";
import { type DebtFacts, type ScoreInputs, summariseDebts } from "../../../lib/credit-score/inputs";

const TODAY = "2026-11-25";
const NOW = new Date(`${TODAY}T12:00:00Z`);
const isoDay = (offset: number) => new Date(Date.parse(TODAY) + offset * 86_400_000).toISOString().slice(0, 10);

// Debts due from 3 years before to 1 year after today; settled (or not) some day up to today.
const debt: fc.Arbitrary<DebtFacts> = fc.record({
	valorCents: fc.integer({ min: 0, max: 5_000_000 }),
	due: fc.integer({ min: -1095, max: 365 }),
	paid: fc.option(fc.integer({ min: -1200, max: 0 }), { nil: null })
}).map(d => ({ valorCents: d.valorCents, dataVencimento: isoDay(d.due), dataPagamento: d.paid === null ? null : isoDay(d.paid) }));
const overdueDebt: fc.Arbitrary<DebtFacts> = fc.record({ valorCents: fc.integer({ min: 0, max: 5_000_000 }), due: fc.integer({ min: -1095, max: -1 }) })
	.map(d => ({ valorCents: d.valorCents, dataVencimento: isoDay(d.due), dataPagamento: null }));

const movements = fc.option(fc.record({
	movements: fc.integer({ min: 0, max: 500 }),
	volumeCents: fc.integer({ min: 0, max: 10_000_000 }),
	cardMovements: fc.integer({ min: 0, max: 50 }),
	activePeriods: fc.integer({ min: 0, max: 6 })
}), { nil: null });
const consultations = fc.option(fc.integer({ min: 0, max: 30 }).chain(total =>
	fc.integer({ min: 0, max: total }).map(distinct => ({ consultations90d: total, distinctConsumers90d: distinct }))), { nil: null });
const assets = fc.option(fc.record({ score: fc.integer({ min: 0, max: 1000 }), band: fc.constant("regular") }), { nil: null });

/** Everything but the debts, which each property varies itself. */
const rest = fc.record({ assets, movements, consultations });
const inputs = (debts: DebtFacts[] | null, r: Omit<ScoreInputs, "debts">): ScoreInputs => ({ ...r, debts: debts && summariseDebts(debts, TODAY) });
const score = (debts: DebtFacts[] | null, r: Omit<ScoreInputs, "debts">) => scoreCredit(inputs(debts, r), NOW).score;

describe("credit scorecard (properties)", () => {
	it("always lies within 0–1000, with the band of its score and the model version", () => {
		fc.assert(fc.property(fc.option(fc.array(debt, { maxLength: 20 }), { nil: null }), rest, (debts, r) => {
			const s = scoreCredit(inputs(debts, r), NOW);
			expect(s.score).toBeGreaterThanOrEqual(0);
			expect(s.score).toBeLessThanOrEqual(1000);
			expect(Number.isInteger(s.score)).toBe(true);
			expect(s.band).toBe(BANDS.find(b => s.score >= b.min)!.band);
			expect(s.model).toBe(MODEL_VERSION);
			expect(s.reasons.length).toBeLessThanOrEqual(MAX_REASONS);
			expect(s.score).toBe(s.components.reduce((a, c) => a + c.points, 0));
		}));
	});

	it("is deterministic: the same inputs at the same time give the same answer", () => {
		fc.assert(fc.property(fc.array(debt, { maxLength: 20 }), rest, (debts, r) => {
			expect(scoreCredit(inputs(debts, r), NOW)).toEqual(scoreCredit(inputs([...debts], { ...r }), NOW));
		}));
	});

	it("one more overdue debt never raises the score", () => {
		fc.assert(fc.property(fc.array(debt, { maxLength: 20 }), overdueDebt, rest, (debts, extra, r) => {
			expect(score([...debts, extra], r)).toBeLessThanOrEqual(score(debts, r));
		}));
	});

	it("a larger overdue amount never raises the score", () => {
		fc.assert(fc.property(fc.array(debt, { maxLength: 20 }), overdueDebt, fc.integer({ min: 0, max: 5_000_000 }), rest, (debts, od, more, r) => {
			expect(score([...debts, { ...od, valorCents: od.valorCents + more }], r)).toBeLessThanOrEqual(score([...debts, od], r));
		}));
	});

	it("settling a debt, on time or late, never lowers the score", () => {
		fc.assert(fc.property(fc.array(debt, { minLength: 1, maxLength: 20 }), fc.nat(), fc.integer({ min: -1200, max: 0 }), rest, (debts, pick, paidOffset, r) => {
			const open = debts.map((d, i) => [d, i] as const).filter(([d]) => d.dataPagamento === null);
			fc.pre(open.length > 0);
			const [d, i] = open[pick % open.length];
			const settled = debts.map((x, j) => (j === i ? { ...d, dataPagamento: isoDay(paidOffset) } : x));
			expect(score(settled, r)).toBeGreaterThanOrEqual(score(debts, r));
		}));
	});

	it("more recent consultations, by the same or another consumer, never raise the score", () => {
		fc.assert(fc.property(fc.array(debt, { maxLength: 10 }), rest, fc.integer({ min: 0, max: 30 }), fc.integer({ min: 1, max: 10 }), fc.boolean(),
			(debts, r, total, more, newConsumer) => {
				const before = { consultations90d: total, distinctConsumers90d: Math.min(total, 3) };
				const after = { consultations90d: total + more, distinctConsumers90d: before.distinctConsumers90d + (newConsumer ? more : 0) };
				expect(score(debts, { ...r, consultations: after })).toBeLessThanOrEqual(score(debts, { ...r, consultations: before }));
			}));
	});

	it("names each missing part, takes its neutral points, and never throws", () => {
		fc.assert(fc.property(fc.option(fc.array(debt, { maxLength: 5 }), { nil: null }), rest, (debts, r) => {
			const s = scoreCredit(inputs(debts, r), NOW);
			const missing = s.missing.map(m => m.part);
			expect(s.complete).toBe(missing.length === 0);
			for (const c of s.components) {
				const char = CHARACTERISTICS.find(x => x.code === c.code)!;
				if (missing.includes(c.part)) expect(c).toMatchObject({ neutral: true, points: char.neutral, value: null });
				else expect(c.neutral).toBe(false);
			}
		}));
	});
});

describe("credit scorecard (examples)", () => {
	const clean = { debts: summariseDebts([{ valorCents: 10_000, dataVencimento: "2025-01-10", dataPagamento: "2025-01-05" }], TODAY), assets: { score: 900, band: "excelente" },
		movements: { movements: 120, volumeCents: 3_000_000, cardMovements: 30, activePeriods: 6 }, consultations: { consultations90d: 1, distinctConsumers90d: 1 } };

	it("the maxima add up to 1000, and a spotless person with every part reaches it", () => {
		expect(CHARACTERISTICS.reduce((a, c) => a + maxPoints(c), 0)).toBe(1000);
		const s = scoreCredit(clean, NOW);
		expect(s).toMatchObject({ score: 1000, band: "A", risk: "muito baixo risco", complete: true, missing: [], reasons: [], computedAt: NOW.toISOString() });
	});

	it("gives the strongest negative factors first, in Portuguese", () => {
		const debts = summariseDebts([
			{ valorCents: 1_500_000, dataVencimento: "2026-01-10", dataPagamento: null },
			{ valorCents: 250_00, dataVencimento: "2026-10-01", dataPagamento: null },
			{ valorCents: 100_00, dataVencimento: "2025-01-10", dataPagamento: "2025-03-01" }
		], TODAY);
		expect(debts).toEqual({ open: 2, overdue: 2, overdueCents: 1_525_000, maxDaysOverdue: 319, paidOnTime: 0, paidLate: 1 });
		const s = scoreCredit({ ...clean, debts }, NOW);
		expect(s.reasons.map(r => r.code)).toEqual(["OVERDUE_DEBTS", "OVERDUE_AMOUNT", "DAYS_OVERDUE", "PAYMENT_HISTORY"]);
		expect(s.reasons[0]).toEqual({ code: "OVERDUE_DEBTS", pointsLost: 190, message: "2 dívidas vencidas em aberto." });
		expect(s.reasons[2].message).toBe("Dívida vencida há 319 dias.");
		expect(s.score).toBe(1000 - 190 - 130 - 120 - 100);
		expect(s.band).toBe("D");
	});

	it("a missing profile and no movements: neutral points, named as missing with their reasons", () => {
		const s = scoreCredit({ ...clean, assets: null, movements: { movements: 0, volumeCents: 0, cardMovements: 0, activePeriods: 0 }, missing: { assets: "not_found" } }, NOW);
		expect(s.complete).toBe(false);
		expect(s.missing).toEqual([{ part: "assets", reason: "not_found" }, { part: "movements", reason: "no_data" }]);
		expect(s.components.find(c => c.code === "ASSET_SCORE")).toMatchObject({ points: 55, neutral: true });
		expect(s.reasons[0]).toMatchObject({ code: "ASSET_SCORE", pointsLost: 75, message: "Sem perfil financeiro (Base B) para avaliar bens e renda." });
		expect(s.score).toBe(1000 - 75 - 45 - 45 - 30);
		expect(s.reasons.map(r => r.code)).toEqual(["ASSET_SCORE", "MOVEMENT_REGULARITY", "MOVEMENT_VOLUME", "CARD_USE"]);
	});

	it("nothing known at all is a neutral score, not an error", () => {
		const s = scoreCredit({ debts: null, assets: null, movements: null, consultations: null, missing: { debts: "unavailable" } }, NOW);
		expect(s.score).toBe(CHARACTERISTICS.reduce((a, c) => a + c.neutral, 0));
		expect(s.missing.map(m => m.reason)).toEqual(["unavailable", "no_data", "no_data", "no_data"]);
	});
});
