import { describe, expect, it } from "vitest";
import { featureRow } from "../../../lib/base-b/features";
import { scoreProfile } from "../../../lib/base-b/score";

const TODAY = "2026-11-25";

describe("featureRow", () => {
	it("counts assets by class and paid off, and measures possession in whole years", () => {
		const bens = [
			{ tipo: "Casa", inicioPosse: "2015-02-01", quitado: true },
			{ tipo: "Apartamento", inicioPosse: "2020-11-26", quitado: false },
			{ tipo: "Carro", inicioPosse: "2022-07-15", quitado: false },
			{ tipo: "Investimento", inicioPosse: "2024-01-01", quitado: true },
			{ tipo: "Outro", inicioPosse: "2026-01-01", quitado: true }
		];
		const row = featureRow("subject-1", "1986-05-10", "Assalariado", bens, TODAY);
		expect(row).toMatchObject({
			subject: "subject-1", idade: 40, fonteDeRenda: "Assalariado",
			bensTotal: 5, bensQuitados: 3, bensImoveis: 2, bensVeiculos: 1, bensFinanceiros: 1, bensOutros: 1,
			// 11, 5, 4, 2 and 0 years
			anosPosseMax: 11, anosPosseMedia: 4.4
		});
	});

	it("carries the same score and band as the score service gives", () => {
		const bens = [{ tipo: "Moto", inicioPosse: "2019-03-03", quitado: false }];
		const { score, band } = scoreProfile({ dataNascimento: "1990-01-01", fonteDeRenda: "Autônomo", bens }, TODAY);
		expect(featureRow("s", "1990-01-01", "Autônomo", bens, TODAY)).toMatchObject({ score, band });
	});

	it("is all zeros for a profile without assets, and rounds the mean to one decimal", () => {
		expect(featureRow("s", "2000-01-01", "Estudante", [], TODAY)).toMatchObject({ bensTotal: 0, bensQuitados: 0, anosPosseMax: 0, anosPosseMedia: 0 });
		const thirds = [0, 0, 1].map(i => ({ tipo: "Casa", inicioPosse: `${2026 - i}-01-01`, quitado: true }));
		expect(featureRow("s", "2000-01-01", "Estudante", thirds, TODAY).anosPosseMedia).toBe(0.3);
	});

	it("holds no identifier: exactly the documented columns", () => {
		const row = featureRow("s", "1986-05-10", "Assalariado", [], TODAY);
		expect(Object.keys(row).sort()).toEqual(["anosPosseMax", "anosPosseMedia", "band", "bensFinanceiros", "bensImoveis", "bensOutros", "bensQuitados", "bensTotal", "bensVeiculos", "fonteDeRenda", "idade", "score", "subject"]);
		expect(JSON.stringify(row)).not.toMatch(/1986|05-10/);
	});
});
