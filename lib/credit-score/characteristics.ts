import type { AssetPart, ConsultationStats, DebtSummary, MovementStats, PartName } from "./inputs";
import { fromCents } from "../money";

/**
 * The characteristics of scorecard cm-score-1.0 (docs/credit-score.md is the same table in words).
 * Each reads one number from one part; the first bin whose `upTo` (inclusive) covers it gives the
 * points. `none` gives the points when the part is there but the number does not exist (no payment
 * history yet). `neutral` gives them when the part is missing. The maxima add up to 1000.
 */
export interface Bin {
	upTo: number;
	points: number;
}

interface PartOf {
	debts: DebtSummary;
	assets: AssetPart;
	movements: MovementStats;
	consultations: ConsultationStats;
}

export interface Characteristic<P extends PartName = PartName> {
	code: string;
	part: P;
	/** the number the bins read; null: the part has no such number (points: `none`) */
	value(part: PartOf[P]): number | null;
	bins: readonly Bin[];
	none?: number;
	/** points when the part is missing (docs/credit-score.md, "Missing parts") */
	neutral: number;
	/** the Portuguese reason when this characteristic costs points, from its value (null: part missing) */
	message(value: number | null): string;
}

const brl = (cents: number) => fromCents(cents).toLocaleString("pt-BR", { style: "currency", currency: "BRL" });
const n = (count: number, one: string, many: string) => `${count} ${count === 1 ? one : many}`;
const define = <P extends PartName>(c: Characteristic<P>) => c as unknown as Characteristic;

export const CHARACTERISTICS: readonly Characteristic[] = [
	define({
		code: "OVERDUE_DEBTS", part: "debts", value: d => d.overdue, neutral: 170,
		bins: [{ upTo: 0, points: 250 }, { upTo: 1, points: 120 }, { upTo: 2, points: 60 }, { upTo: 4, points: 20 }, { upTo: Infinity, points: 0 }],
		message: v => (v === null ? "Não foi possível consultar as dívidas (Base A)." : `${n(v, "dívida vencida", "dívidas vencidas")} em aberto.`)
	}),
	define({
		code: "OVERDUE_AMOUNT", part: "debts", value: d => d.overdueCents, neutral: 90,
		bins: [{ upTo: 0, points: 130 }, { upTo: 50_000, points: 90 }, { upTo: 200_000, points: 55 }, { upTo: 1_000_000, points: 20 }, { upTo: Infinity, points: 0 }],
		message: v => (v === null ? "Valor em atraso desconhecido (Base A indisponível ou sem cadastro)." : `Valor total em atraso: ${brl(v)}.`)
	}),
	define({
		code: "DAYS_OVERDUE", part: "debts", value: d => d.maxDaysOverdue, neutral: 80,
		bins: [{ upTo: 0, points: 120 }, { upTo: 30, points: 85 }, { upTo: 90, points: 45 }, { upTo: 180, points: 15 }, { upTo: Infinity, points: 0 }],
		message: v => (v === null ? "Tempo de atraso desconhecido (Base A indisponível ou sem cadastro)." : `Dívida vencida há ${n(v, "dia", "dias")}.`)
	}),
	define({
		// Late events: open overdue debts and debts settled late; their share of all debts that came due.
		code: "PAYMENT_HISTORY", part: "debts", none: 60, neutral: 60,
		value: d => {
			const late = d.overdue + d.paidLate;
			const total = late + d.paidOnTime;
			return total === 0 ? null : (late * 100) / total;
		},
		bins: [{ upTo: 0, points: 100 }, { upTo: 25, points: 50 }, { upTo: 50, points: 25 }, { upTo: Infinity, points: 0 }],
		message: v => (v === null ? "Sem histórico de pagamentos conhecido." : `${Math.round(v)}% das dívidas vencidas foram ou estão sendo pagas com atraso.`)
	}),
	define({
		code: "ASSET_SCORE", part: "assets", value: a => a.score, neutral: 55,
		bins: [{ upTo: 299, points: 15 }, { upTo: 499, points: 45 }, { upTo: 699, points: 75 }, { upTo: 849, points: 105 }, { upTo: Infinity, points: 130 }],
		message: v => (v === null ? "Sem perfil financeiro (Base B) para avaliar bens e renda." : `Score de bens e renda: ${v} de 1000.`)
	}),
	define({
		code: "MOVEMENT_REGULARITY", part: "movements", value: m => m.activePeriods, neutral: 25,
		bins: [{ upTo: 1, points: 25 }, { upTo: 3, points: 40 }, { upTo: 5, points: 55 }, { upTo: Infinity, points: 70 }],
		message: v => (v === null ? "Sem movimentações financeiras nos últimos 6 meses." : `Movimentações em ${v} dos últimos 6 meses.`)
	}),
	define({
		code: "MOVEMENT_VOLUME", part: "movements", value: m => m.volumeCents, neutral: 15,
		bins: [{ upTo: 99_999, points: 15 }, { upTo: 499_999, points: 30 }, { upTo: 1_999_999, points: 45 }, { upTo: Infinity, points: 60 }],
		message: v => (v === null ? "Volume movimentado desconhecido nos últimos 6 meses." : `Volume movimentado nos últimos 6 meses: ${brl(v)}.`)
	}),
	define({
		code: "CARD_USE", part: "movements", value: m => m.cardMovements, neutral: 10,
		bins: [{ upTo: 0, points: 10 }, { upTo: 5, points: 25 }, { upTo: Infinity, points: 40 }],
		message: v => (v === null ? "Uso de cartão desconhecido nos últimos 6 meses." : v === 0 ? "Nenhuma compra com cartão nos últimos 6 meses." : `Poucas compras com cartão nos últimos 6 meses (${v}).`)
	}),
	define({
		code: "CONSULTING_COMPANIES", part: "consultations", value: c => c.distinctConsumers90d, neutral: 50,
		bins: [{ upTo: 1, points: 70 }, { upTo: 2, points: 50 }, { upTo: 4, points: 30 }, { upTo: 7, points: 10 }, { upTo: Infinity, points: 0 }],
		message: v => (v === null ? "Consultas recentes ao CPF desconhecidas." : `CPF consultado por ${n(v, "empresa", "empresas")} nos últimos 90 dias.`)
	}),
	define({
		code: "RECENT_CONSULTATIONS", part: "consultations", value: c => c.consultations90d, neutral: 15,
		bins: [{ upTo: 3, points: 30 }, { upTo: 10, points: 15 }, { upTo: Infinity, points: 0 }],
		message: v => (v === null ? "Número de consultas recentes ao CPF desconhecido." : `${n(v, "consulta", "consultas")} ao CPF nos últimos 90 dias.`)
	})
];

/** The most a characteristic can give: its best bin (or `none`, whichever is higher). */
export const maxPoints = (c: Characteristic) => Math.max(...c.bins.map(b => b.points), c.none ?? 0);

/** The points of a number: the first bin whose `upTo` covers it. */
export const pointsOf = (c: Characteristic, value: number) => c.bins.find(b => value <= b.upTo)!.points;
