import { describe, expect, it } from "vitest";
import { creditScoreColumns, historyView, scoreDoc } from "../../../lib/base-b/score-history";
import { scoreCredit } from "../../../lib/credit-score/scorecard";

const NOW = new Date("2026-11-25T12:00:00.000Z");
const score = scoreCredit({
	debts: { open: 1, overdue: 1, overdueCents: 10_000, maxDaysOverdue: 12, paidOnTime: 2, paidLate: 0 },
	assets: null, movements: { movements: 3, volumeCents: 50_000, cardMovements: 1, activePeriods: 2 },
	consultations: { consultations90d: 1, distinctConsumers90d: 1 }, missing: { assets: "not_found" }
}, NOW);

describe("kept credit scores", () => {
	it("keep the score, its version, time, missing parts and components under the blind index, and nothing else", () => {
		const doc = scoreDoc("b".repeat(64), score);
		expect(Object.keys(doc).sort()).toEqual(["at", "band", "bidx", "complete", "components", "missing", "model", "risk", "score"]);
		expect(doc).toMatchObject({ bidx: "b".repeat(64), at: NOW, score: score.score, model: "cm-score-1.0", complete: false, missing: [{ part: "assets", reason: "not_found" }] });
		expect(doc.components).toHaveLength(score.components.length);
		expect(historyView(doc)).toEqual({ score: score.score, band: score.band, risk: score.risk, model: "cm-score-1.0", computedAt: NOW.toISOString(), complete: false, missing: doc.missing, components: doc.components });
	});

	it("give the ML export its columns: points per characteristic, null for a missing part, all null when never scored", () => {
		const cols = creditScoreColumns(scoreDoc("b".repeat(64), score));
		expect(cols).toMatchObject({ creditScore: score.score, creditBand: score.band, creditModel: "cm-score-1.0", creditComputedAt: NOW.toISOString() });
		expect(cols.creditComponents).toMatchObject({ OVERDUE_DEBTS: 120, ASSET_SCORE: null });
		expect(creditScoreColumns(undefined)).toEqual({ creditScore: null, creditBand: null, creditModel: null, creditComputedAt: null, creditComponents: null });
	});
});
