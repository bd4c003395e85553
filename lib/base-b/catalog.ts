// The documented vocabularies of payload B (see docs/score.md). Values are exact, accents included.

/** `bens[].tipo`, grouped by the class the score weighs them by. */
export const ASSET_CLASSES = {
	realEstate: ["Casa", "Apartamento", "Terreno", "Imóvel Comercial", "Imóvel Rural"],
	vehicle: ["Carro", "Moto", "Caminhão", "Barco", "Aeronave"],
	financial: ["Investimento", "Previdência Privada"],
	other: ["Outro"]
} as const;

export type AssetClass = keyof typeof ASSET_CLASSES;
export const ASSET_TYPES: string[] = Object.values(ASSET_CLASSES).flat();

export function assetClassOf(tipo: string): AssetClass {
	for (const [cls, types] of Object.entries(ASSET_CLASSES)) if ((types as readonly string[]).includes(tipo)) return cls as AssetClass;
	return "other";
}

/** `fonteDeRenda`. */
export const INCOME_SOURCES = [
	"Servidor Público", "Assalariado", "Aposentado", "Pensionista", "Empresário", "Autônomo",
	"Investimentos", "Estudante", "Desempregado", "Outro"
] as const;
export type IncomeSource = (typeof INCOME_SOURCES)[number];
