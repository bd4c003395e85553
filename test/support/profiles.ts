/** Payload B of the seed, without the CPF (the path's) and `idade` (derived): the body of PUT /profiles/:cpf. */
export const seedPayloadB = {
	dataNascimento: "10/05/1986",
	endereco: "Rua XXXX, 100 - Bairro",
	fonteDeRenda: "Assalariado",
	bens: [
		{ tipo: "Casa", inicioPosse: "01/02/2015", quitado: true },
		{ tipo: "Carro", inicioPosse: "2022-07-15", quitado: false }
	]
};
