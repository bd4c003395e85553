// Parameter rules shared by the actions' schemas (fastest-validator). Patterns are allow-lists:
// a name or an address has no use for `;`, `=`, `<` or quotes other than the apostrophe.
// Letters of any script; of the combining marks only U+0300–U+036F, the accents a decomposed
// "José" carries (`\p{M}` also admits overlays and marks for symbols that no name needs).

export const cpf = { type: "cpf" } as const;

export const nome = {
	type: "string", trim: true, min: 2, max: 120,
	pattern: /^\p{L}[\p{L}\u0300-\u036F '.-]*$/u,
	messages: { stringPattern: "The 'nome' field may hold only letters, spaces, apostrophes, dots and hyphens." }
} as const;

export const endereco = {
	type: "string", trim: true, min: 3, max: 200,
	pattern: /^[\p{L}\p{N}\u0300-\u036F ,.'ºª°#/()-]+$/u,
	messages: { stringPattern: "The 'endereco' field may hold only letters, digits, spaces and , . ' º ª ° # / ( ) -" }
} as const;

export const empresa = {
	type: "string", trim: true, min: 1, max: 120,
	pattern: /^[\p{L}\p{N}\u0300-\u036F &.,'/-]+$/u,
	messages: { stringPattern: "The 'empresa' field may hold only letters, digits, spaces and & . , ' / -" }
} as const;

export const money = { type: "money" } as const;
export const date = { type: "date" } as const;
export const optionalDate = { type: "date", optional: true } as const;
/** `dataPagamento`: accepted as another spelling of the seed's `datePagamento`, documented only under that name. */
export const paymentDateAlias = { ...optionalDate, openapi: false } as const;
export const uuid = { type: "uuid" } as const;
