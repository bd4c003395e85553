import { describe, expect, it } from "vitest";
import { ASSET_CLASSES, ASSET_TYPES, assetClassOf, INCOME_SOURCES } from "../../../lib/base-b/catalog";
import { SCORE_WEIGHTS } from "../../../lib/base-b/score-weights";

describe("asset types", () => {
	it("are each in one class only, and ASSET_TYPES is all of them", () => {
		const all = Object.values(ASSET_CLASSES).flat();
		expect(new Set(all).size).toBe(all.length);
		expect([...ASSET_TYPES].sort()).toEqual([...all].sort());
	});

	it("give each type its class, accents and case exact; anything else is other", () => {
		expect(assetClassOf("Casa")).toBe("realEstate");
		expect(assetClassOf("Imóvel Rural")).toBe("realEstate");
		expect(assetClassOf("Caminhão")).toBe("vehicle");
		expect(assetClassOf("Previdência Privada")).toBe("financial");
		expect(assetClassOf("Outro")).toBe("other");
		for (const tipo of ["Castelo", "casa", "Imovel Rural", "", "toString", "__proto__"]) expect(assetClassOf(tipo), tipo).toBe("other");
		for (const [cls, types] of Object.entries(ASSET_CLASSES)) for (const tipo of types) expect(assetClassOf(tipo)).toBe(cls);
	});
});

describe("income sources", () => {
	it("are distinct, and each has its points in the score's weights", () => {
		expect(new Set(INCOME_SOURCES).size).toBe(INCOME_SOURCES.length);
		expect(Object.keys(SCORE_WEIGHTS.income).sort()).toEqual([...INCOME_SOURCES].sort());
	});
});
