import type { AssetClass, IncomeSource } from "./catalog";

/**
 * Weights and bands of the asset score (formula in docs/score.md). The score starts at `base`,
 * each rule adds or removes points, and the total is clamped to 0–1000.
 */
export const SCORE_WEIGHTS = {
	base: 300,
	/** Points per asset paid off, by class; the sum is capped. */
	paidOff: { realEstate: 120, vehicle: 50, financial: 60, other: 20 } satisfies Record<AssetClass, number>,
	paidOffCap: 300,
	/** Points lost per asset still being paid; the loss is capped. */
	financed: -15,
	financedCap: -60,
	/** Points per whole year the longest-held asset has been owned, capped. */
	possessionPerYear: 10,
	possessionCap: 150,
	income: {
		"Servidor Público": 200, Aposentado: 180, Assalariado: 160, Pensionista: 150, Empresário: 130,
		Autônomo: 110, Investimentos: 110, Outro: 60, Estudante: 40, Desempregado: 0
	} satisfies Record<IncomeSource, number>,
	/** Points by age, the first band whose `upTo` (inclusive) covers it. */
	age: [
		{ upTo: 20, points: 0 },
		{ upTo: 24, points: 40 },
		{ upTo: 60, points: 100 },
		{ upTo: 75, points: 70 },
		{ upTo: Infinity, points: 40 }
	]
} as const;

/** Bands from the top: the first whose `min` the score reaches. */
export const SCORE_BANDS = [
	{ min: 850, band: "excelente" },
	{ min: 700, band: "bom" },
	{ min: 500, band: "regular" },
	{ min: 300, band: "baixo" },
	{ min: 0, band: "muito baixo" }
] as const;
