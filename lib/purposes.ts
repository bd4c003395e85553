import { Errors } from "moleculer";

/**
 * The purposes (finalidades) a consultation may state: a closed list (docs/consultation-purpose.md),
 * each tied to a legal basis of LGPD art. 7. A consulting request states one in the `Finalidade`
 * header; an API key may be limited to some of them (`purposes` on the consumer).
 */
export const PURPOSES = {
	concessao_credito: "Concessão de crédito: análise de um pedido de crédito, financiamento ou crediário (art. 7, X: proteção do crédito)",
	revisao_limite: "Revisão de limite ou de condições de crédito já concedido (art. 7, X)",
	cobranca: "Cobrança de dívida vencida do titular (art. 7, VI e X: exercício regular de direitos, proteção do crédito)",
	prevencao_fraude: "Prevenção a fraude e confirmação de identidade numa transação (art. 7, IX: legítimo interesse; art. 11, II, g)",
	contratacao: "Contratação ou abertura de conta: procedimentos preliminares a um contrato pedido pelo titular (art. 7, V)",
	obrigacao_legal: "Cumprimento de obrigação legal ou regulatória, como prevenção à lavagem de dinheiro (art. 7, II)",
	consulta_titular: "Consulta do próprio titular aos seus dados (art. 7, I e art. 18, II: acesso)"
} as const;

export type Purpose = keyof typeof PURPOSES;
export const PURPOSE_CODES = Object.keys(PURPOSES) as Purpose[];

export const isPurpose = (value: unknown): value is Purpose => typeof value === "string" && Object.hasOwn(PURPOSES, value);

/** A consulting request without a purpose, or with one not in the list: 400, nothing consulted. */
export class PurposeError extends Errors.MoleculerClientError {
	constructor(missing: boolean) {
		super(missing ? "A consultation must state its purpose in the Finalidade header" : "The Finalidade header is not one of the documented purposes",
			400, missing ? "PURPOSE_REQUIRED" : "PURPOSE_UNKNOWN", { header: "Finalidade", allowed: PURPOSE_CODES });
	}
}

/** A purpose the API key is not allowed to consult for: 403, nothing consulted. */
export class PurposeNotAllowedError extends Errors.MoleculerClientError {
	constructor(allowed: readonly string[]) {
		super("This API key may not consult for this purpose", 403, "PURPOSE_NOT_ALLOWED", { allowed: [...allowed] });
	}
}
