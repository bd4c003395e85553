import { yearsBetween } from "../dates";
import { ASSET_CLASSES, assetClassOf } from "./catalog";
import type { Asset } from "./profile";
import { scoreProfile } from "./score";

/** A page of an ML export (services/ml-export.service.ts), as the gateway pulls it (mixins/ml-export-pull.mixin.ts). */
export interface ExportPage {
	/** The export's id, for its next page. */
	export: string;
	/** The node whose cursor it is: every page comes from it. */
	node: string;
	/** NDJSON, one row per profile. */
	lines: string;
	/** The last page: the export is closed. */
	done: boolean;
}

/** One training row (columns documented in docs/ml-export.md): no CPF, name, address or birth date. */
export interface FeatureRow {
	subject: string;
	idade: number;
	fonteDeRenda: string;
	bensTotal: number;
	bensQuitados: number;
	bensImoveis: number;
	bensVeiculos: number;
	bensFinanceiros: number;
	bensOutros: number;
	anosPosseMax: number;
	anosPosseMedia: number;
	score: number;
	band: string;
}

export function featureRow(subject: string, dataNascimento: string, fonteDeRenda: string, bens: Asset[], todayIso: string): FeatureRow {
	const years = bens.map(b => yearsBetween(b.inicioPosse, todayIso));
	const count = (cls: keyof typeof ASSET_CLASSES) => bens.filter(b => assetClassOf(b.tipo) === cls).length;
	const { score, band } = scoreProfile({ dataNascimento, fonteDeRenda, bens }, todayIso);
	return {
		subject,
		idade: yearsBetween(dataNascimento, todayIso),
		fonteDeRenda,
		bensTotal: bens.length,
		bensQuitados: bens.filter(b => b.quitado).length,
		bensImoveis: count("realEstate"),
		bensVeiculos: count("vehicle"),
		bensFinanceiros: count("financial"),
		bensOutros: count("other"),
		anosPosseMax: years.length ? Math.max(...years) : 0,
		anosPosseMedia: years.length ? Math.round((years.reduce((a, b) => a + b, 0) / years.length) * 10) / 10 : 0,
		score,
		band
	};
}
