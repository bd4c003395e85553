import { describe, expect, it } from "vitest";
import { profileView, type ProfileDoc } from "../../../lib/base-b/profile";

const doc: ProfileDoc = {
	_id: "a".repeat(64), cpf_enc: "v1.k.cpf", endereco_enc: "v1.k.end", dataNascimento_enc: "v1.k.nasc",
	fonteDeRenda: "Assalariado",
	bens: [{ tipo: "Casa", inicioPosse: "2015-02-01", quitado: true }, { tipo: "Carro", inicioPosse: "2022-07-15", quitado: false }],
	createdAt: new Date(), updatedAt: new Date()
};
const opened = { cpf: "52998224725", endereco: "Rua XXXX, 100 - Bairro", dataNascimento: "1986-05-10" };

describe("profileView", () => {
	it("is payload B exactly: the seed's fields in the seed's order, dates as DD/MM/YYYY", () => {
		const view = profileView(doc, opened, "2026-11-25");
		expect(Object.keys(view)).toEqual(["cpf", "dataNascimento", "idade", "endereco", "fonteDeRenda", "bens"]);
		expect(view).toEqual({
			cpf: "52998224725", dataNascimento: "10/05/1986", idade: 40, endereco: "Rua XXXX, 100 - Bairro", fonteDeRenda: "Assalariado",
			bens: [{ tipo: "Casa", inicioPosse: "01/02/2015", quitado: true }, { tipo: "Carro", inicioPosse: "15/07/2022", quitado: false }]
		});
	});

	it("derives idade on the day asked, turning a year older on the birthday", () => {
		expect(profileView(doc, opened, "2026-05-09").idade).toBe(39);
		expect(profileView(doc, opened, "2026-05-10").idade).toBe(40);
	});

	it("shows none of the stored document's own fields, and copies assets without extra keys", () => {
		const withExtra = { ...doc, bens: [{ ...doc.bens[0], valor: 1 } as any] };
		const text = JSON.stringify(profileView(withExtra, opened, "2026-11-25"));
		for (const field of ["_id", "cpf_enc", "endereco_enc", "dataNascimento_enc", "createdAt", "valor"]) expect(text).not.toContain(field);
	});
});
