import { SCORE_BANDS, SCORE_WEIGHTS } from "./score-weights";
import { yearsBetween } from "../dates";
import { assetClassOf, type IncomeSource } from "./catalog";

export interface ScoredProfile {
	dataNascimento: string; // ISO
	fonteDeRenda: string;
	bens: { tipo: string; inicioPosse: string; quitado: boolean }[]; // inicioPosse ISO
}

export interface Reason {
	code: "ASSETS_PAID_OFF" | "ASSETS_FINANCED" | "NO_ASSETS" | "POSSESSION_TIME" | "INCOME_SOURCE" | "AGE";
	points: number;
	message: string;
}

export interface Score {
	score: number;
	band: string;
	reasons: Reason[];
}

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

/** The asset score of a profile on a given day: deterministic, every point explained by a reason. */
export function scoreProfile(profile: ScoredProfile, todayIso: string, w = SCORE_WEIGHTS): Score {
	const reasons: Reason[] = [];
	const paid = profile.bens.filter(b => b.quitado);
	const financed = profile.bens.filter(b => !b.quitado);

	if (profile.bens.length === 0) {
		reasons.push({ code: "NO_ASSETS", points: 0, message: "Nenhum bem declarado." });
	}
	if (paid.length > 0) {
		const points = Math.min(w.paidOffCap, paid.reduce((sum, b) => sum + w.paidOff[assetClassOf(b.tipo)], 0));
		reasons.push({ code: "ASSETS_PAID_OFF", points, message: `${plural(paid.length, "bem quitado", "bens quitados")}.` });
	}
	if (financed.length > 0) {
		const points = Math.max(w.financedCap, financed.length * w.financed);
		reasons.push({ code: "ASSETS_FINANCED", points, message: `${plural(financed.length, "bem ainda não quitado", "bens ainda não quitados")}.` });
	}
	if (profile.bens.length > 0) {
		// A start date in the future counts as no time at all; a very old one is capped.
		const years = Math.max(...profile.bens.map(b => yearsBetween(b.inicioPosse, todayIso)));
		const points = Math.min(w.possessionCap, years * w.possessionPerYear);
		reasons.push({ code: "POSSESSION_TIME", points, message: `Posse mais longa: ${plural(years, "ano", "anos")}.` });
	}
	const income = w.income[profile.fonteDeRenda as IncomeSource] ?? w.income.Outro;
	reasons.push({ code: "INCOME_SOURCE", points: income, message: `Fonte de renda: ${profile.fonteDeRenda}.` });

	const age = yearsBetween(profile.dataNascimento, todayIso);
	const agePoints = w.age.find(a => age <= a.upTo)!.points;
	reasons.push({ code: "AGE", points: agePoints, message: `Idade: ${plural(age, "ano", "anos")}.` });

	const total = w.base + reasons.reduce((sum, r) => sum + r.points, 0);
	const score = Math.max(0, Math.min(1000, total));
	return { score, band: SCORE_BANDS.find(b => score >= b.min)!.band, reasons };
}
