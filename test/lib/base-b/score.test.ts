import { describe, expect, it } from "vitest";
import { scoreProfile, type ScoredProfile } from "../../../lib/base-b/score";
import { SCORE_WEIGHTS as W } from "../../../lib/base-b/score-weights";

const TODAY = "2026-11-25";
const adult: ScoredProfile = { dataNascimento: "1986-05-10", fonteDeRenda: "Assalariado", bens: [] };
const reason = (s: ReturnType<typeof scoreProfile>, code: string) => s.reasons.find(r => r.code === code);
const total = (s: ReturnType<typeof scoreProfile>) => W.base + s.reasons.reduce((a, r) => a + r.points, 0);

describe("asset score", () => {
	it("no assets: only income and age count, with a NO_ASSETS reason", () => {
		const s = scoreProfile(adult, TODAY);
		expect(reason(s, "NO_ASSETS")).toMatchObject({ points: 0 });
		expect(reason(s, "ASSETS_PAID_OFF")).toBeUndefined();
		expect(reason(s, "POSSESSION_TIME")).toBeUndefined();
		expect(s.score).toBe(W.base + W.income.Assalariado + 100);
		expect(s.band).toBe("regular");
	});

	it("paid-off assets add points by class, capped", () => {
		const house = { tipo: "Casa", inicioPosse: "2020-01-01", quitado: true };
		const car = { tipo: "Carro", inicioPosse: "2020-01-01", quitado: true };
		expect(reason(scoreProfile({ ...adult, bens: [house] }, TODAY), "ASSETS_PAID_OFF")!.points).toBe(W.paidOff.realEstate);
		expect(reason(scoreProfile({ ...adult, bens: [car] }, TODAY), "ASSETS_PAID_OFF")!.points).toBe(W.paidOff.vehicle);
		expect(reason(scoreProfile({ ...adult, bens: [house, house, house, house] }, TODAY), "ASSETS_PAID_OFF")!.points).toBe(W.paidOffCap);
	});

	it("financed assets take points away, capped", () => {
		const financed = { tipo: "Apartamento", inicioPosse: "2024-01-01", quitado: false };
		expect(reason(scoreProfile({ ...adult, bens: [financed] }, TODAY), "ASSETS_FINANCED")!.points).toBe(W.financed);
		expect(reason(scoreProfile({ ...adult, bens: Array(10).fill(financed) }, TODAY), "ASSETS_FINANCED")!.points).toBe(W.financedCap);
	});

	it("time of possession counts whole years of the longest-held asset; future dates count as none; very old ones are capped", () => {
		const since = (inicioPosse: string) => reason(scoreProfile({ ...adult, bens: [{ tipo: "Casa", inicioPosse, quitado: true }] }, TODAY), "POSSESSION_TIME")!.points;
		expect(since("2021-11-25")).toBe(5 * W.possessionPerYear);
		expect(since("2021-11-26")).toBe(4 * W.possessionPerYear);
		expect(since("2030-01-01")).toBe(0);
		expect(since("1900-01-01")).toBe(W.possessionCap);
	});

	it("income source points follow the configured table", () => {
		for (const [source, points] of Object.entries(W.income)) {
			expect(reason(scoreProfile({ ...adult, fonteDeRenda: source }, TODAY), "INCOME_SOURCE")!.points).toBe(points);
		}
		expect(reason(scoreProfile({ ...adult, fonteDeRenda: "Desconhecida" }, TODAY), "INCOME_SOURCE")!.points).toBe(W.income.Outro);
	});

	it("age bands, including a birth date in the future and a very old one", () => {
		const age = (dataNascimento: string) => reason(scoreProfile({ ...adult, dataNascimento }, TODAY), "AGE")!;
		expect(age("2008-11-26").points).toBe(0); // 17
		expect(age("2004-11-25").points).toBe(40); // 22
		expect(age("1986-05-10").points).toBe(100); // 40
		expect(age("1956-01-01").points).toBe(70); // 70
		expect(age("1900-01-01").points).toBe(40); // 126
		expect(age("2030-01-01")).toMatchObject({ points: 0, message: "Idade: 0 anos." });
	});

	it("stays within 0–1000 and the reasons explain every point", () => {
		const rich: ScoredProfile = {
			dataNascimento: "1970-01-01", fonteDeRenda: "Servidor Público",
			bens: Array.from({ length: 5 }, () => ({ tipo: "Casa", inicioPosse: "1990-01-01", quitado: true }))
		};
		const poor: ScoredProfile = { dataNascimento: "2010-01-01", fonteDeRenda: "Desempregado", bens: Array(10).fill({ tipo: "Carro", inicioPosse: "2026-01-01", quitado: false }) };
		const top = scoreProfile(rich, TODAY);
		expect(top.score).toBe(1000);
		expect(top.band).toBe("excelente");
		const low = scoreProfile(poor, TODAY);
		expect(low.score).toBe(total(low));
		expect(low.score).toBeGreaterThanOrEqual(0);
		expect(low.band).toBe("muito baixo");
		for (const s of [top, low]) for (const r of s.reasons) expect(r.message.length).toBeGreaterThan(5);
	});

	it("is deterministic", () => {
		const p: ScoredProfile = { ...adult, bens: [{ tipo: "Moto", inicioPosse: "2019-03-03", quitado: false }] };
		expect(scoreProfile(p, TODAY)).toEqual(scoreProfile(p, TODAY));
	});
});
