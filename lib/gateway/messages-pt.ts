/**
 * The API's error messages in Brazilian Portuguese (docs/errors.md). Only `message` texts change:
 * names, codes, types and fields stay as they are, so a client's error handling does not depend on
 * the language it reads. Keyed by the error's `type` (stable) and, for validation items, by the
 * fastest-validator rule type and field. No message echoes a value the client sent.
 */

/** The thing a NOT_FOUND is about, as the English message names it. */
const NOT_FOUND_PT: Record<string, string> = {
	"Person not found": "Pessoa não encontrada",
	"Profile not found": "Perfil não encontrado",
	"Debt not found": "Dívida não encontrada",
	"Consumer not found": "Consumidor não encontrado",
	"Activity for this CPF not found": "Nenhuma atividade para este CPF",
	"Not found": "Recurso não encontrado"
};

/** Top-level messages by error type (`fallback` when a type has several English messages). */
export const ERRORS_PT: Record<string, string | ((english: string) => string)> = {
	NOT_FOUND: english => NOT_FOUND_PT[english] ?? "Recurso não encontrado",
	VALIDATION_ERROR: "Erro de validação dos parâmetros",
	NO_TOKEN: "Não autorizado: envie a chave de API no cabeçalho Authorization (Bearer)",
	INVALID_TOKEN: "Não autorizado: a chave de API é inválida ou foi revogada",
	ERR_MISSING_SCOPE: "Proibido: a chave de API não tem o escopo que esta rota exige",
	PURPOSE_REQUIRED: "Uma consulta deve declarar a sua finalidade no cabeçalho Finalidade",
	PURPOSE_UNKNOWN: "O cabeçalho Finalidade não traz uma das finalidades documentadas",
	PURPOSE_NOT_ALLOWED: "Proibido: esta chave de API não pode consultar com esta finalidade",
	CALLER_NOT_ALLOWED: "Proibido: este grupo de serviços não pode chamar esta ação",
	INVALID_CALLER_TOKEN: "A chamada não traz um token de chamador válido",
	NOT_OWNER: "Só o consumidor que registrou esta dívida (ou uma chave debts:admin) pode quitá-la",
	PERSON_EXISTS: "Já existe uma pessoa com este CPF",
	MONITOR_LIMIT: "Este consumidor já monitora o número máximo de CPFs",
	SUBSCRIPTION_LIMIT: "Este consumidor já tem o número máximo de assinaturas de webhook",
	CONFLICT: "O registro já existe",
	ERASED_MEANWHILE: "Os dados deste CPF foram apagados enquanto esta requisição era atendida; envie-a de novo para registrá-la como nova",
	IDEMPOTENCY_KEY_REUSED: "Esta Idempotency-Key já foi usada numa requisição diferente",
	IDEMPOTENCY_IN_PROGRESS: "Uma requisição com esta Idempotency-Key ainda está em andamento",
	INVALID_IDEMPOTENCY_KEY: "A Idempotency-Key deve ter de 1 a 255 caracteres ASCII visíveis",
	TOO_MANY_MOVEMENTS: "Movimentações demais numa só requisição",
	TOO_MANY_CPFS: "CPFs demais num só lote (no máximo 10 000)",
	ENTITY_TOO_LARGE: "O corpo da requisição é grande demais",
	PAYLOAD_TOO_LARGE: "O corpo da requisição é grande demais",
	ENTITY_PARSE_FAILED: "O corpo da requisição não é um JSON válido",
	ENTITY_VERIFY_FAILED: "O corpo da requisição não pôde ser lido",
	REQUEST_ABORTED: "O corpo da requisição não foi recebido por inteiro",
	REQUEST_SIZE_INVALID: "O corpo da requisição não corresponde ao seu Content-Length",
	ENCODING_UNSUPPORTED: "A codificação do corpo da requisição não é aceita",
	CHARSET_UNSUPPORTED: "O charset do corpo da requisição não é aceito",
	UNSUPPORTED_MEDIA_TYPE: "Tipo de mídia não aceito por esta rota",
	METHOD_NOT_ALLOWED: "Método não permitido nesta rota",
	RATE_LIMIT_EXCEEDED: "Limite de requisições excedido; tente de novo mais tarde",
	BASE_UNAVAILABLE: "A base está indisponível; tente de novo mais tarde",
	EXPORTS_BUSY: "Há exportações de ML demais em andamento; tente de novo mais tarde",
	SERVICE_UNAVAILABLE: "O serviço está temporariamente indisponível; tente de novo mais tarde",
	INTERNAL_ERROR: "Erro inesperado; informe o X-Request-Id ao relatá-lo"
};

/** fastest-validator's rule types, our own rules (lib/validator.ts) and our handlers' checks. */
export const VALIDATION_PT: Record<string, string> = {
	required: "O campo '{field}' é obrigatório.",
	string: "O campo '{field}' deve ser um texto.",
	stringEmpty: "O campo '{field}' não pode ser vazio.",
	stringMin: "O campo '{field}' deve ter pelo menos {expected} caracteres.",
	stringMax: "O campo '{field}' deve ter no máximo {expected} caracteres.",
	stringLength: "O campo '{field}' deve ter exatamente {expected} caracteres.",
	stringPattern: "O campo '{field}' não está no formato exigido.",
	stringContains: "O campo '{field}' deve conter o texto '{expected}'.",
	stringEnum: "O campo '{field}' não é um dos valores permitidos.",
	stringNumeric: "O campo '{field}' deve conter só dígitos.",
	stringAlpha: "O campo '{field}' deve conter só letras.",
	stringAlphanum: "O campo '{field}' deve conter só letras e dígitos.",
	stringAlphadash: "O campo '{field}' deve conter só letras, dígitos, '-' e '_'.",
	stringHex: "O campo '{field}' deve ser hexadecimal.",
	stringSingleLine: "O campo '{field}' deve ter uma só linha.",
	stringBase64: "O campo '{field}' deve estar em base64.",
	number: "O campo '{field}' deve ser um número.",
	numberMin: "O campo '{field}' deve ser maior ou igual a {expected}.",
	numberMax: "O campo '{field}' deve ser menor ou igual a {expected}.",
	numberEqual: "O campo '{field}' deve ser igual a {expected}.",
	numberNotEqual: "O campo '{field}' não pode ser igual a {expected}.",
	numberInteger: "O campo '{field}' deve ser um número inteiro.",
	numberPositive: "O campo '{field}' deve ser um número positivo.",
	numberNegative: "O campo '{field}' deve ser um número negativo.",
	array: "O campo '{field}' deve ser uma lista.",
	arrayEmpty: "O campo '{field}' não pode ser uma lista vazia.",
	arrayMin: "O campo '{field}' deve ter pelo menos {expected} itens.",
	arrayMax: "O campo '{field}' deve ter no máximo {expected} itens.",
	arrayLength: "O campo '{field}' deve ter exatamente {expected} itens.",
	arrayContains: "O campo '{field}' deve conter o item '{expected}'.",
	arrayUnique: "O campo '{field}' não pode ter valores repetidos.",
	arrayEnum: "O campo '{field}' contém um valor fora de '{expected}'.",
	tuple: "O campo '{field}' deve ser uma lista.",
	tupleEmpty: "O campo '{field}' não pode ser uma lista vazia.",
	tupleLength: "O campo '{field}' deve ter exatamente {expected} itens.",
	boolean: "O campo '{field}' deve ser verdadeiro ou falso (true/false).",
	currency: "O campo '{field}' deve ser um valor monetário válido.",
	date: "O campo '{field}' deve ser uma data real, DD/MM/AAAA ou AAAA-MM-DD.",
	dateMin: "O campo '{field}' tem uma data anterior à permitida.",
	dateMax: "O campo '{field}' tem uma data posterior à permitida.",
	enumValue: "O campo '{field}' não é um dos valores permitidos.",
	equalValue: "O campo '{field}' deve ser igual a '{expected}'.",
	equalField: "O campo '{field}' deve ser igual ao campo '{expected}'.",
	forbidden: "O campo '{field}' não é permitido.",
	function: "O campo '{field}' deve ser uma função.",
	email: "O campo '{field}' deve ser um e-mail válido.",
	emailEmpty: "O campo '{field}' não pode ser vazio.",
	emailMin: "O campo '{field}' deve ter pelo menos {expected} caracteres.",
	emailMax: "O campo '{field}' deve ter no máximo {expected} caracteres.",
	luhn: "O campo '{field}' deve ter um dígito verificador Luhn válido.",
	mac: "O campo '{field}' deve ser um endereço MAC válido.",
	object: "O campo '{field}' deve ser um objeto.",
	objectStrict: "O objeto '{field}' contém chaves não permitidas.",
	objectMinProps: "O objeto '{field}' deve ter pelo menos {expected} propriedades.",
	objectMaxProps: "O objeto '{field}' deve ter no máximo {expected} propriedades.",
	url: "O campo '{field}' deve ser uma URL válida.",
	urlEmpty: "O campo '{field}' não pode ser vazio.",
	uuid: "O campo '{field}' deve ser um UUID válido.",
	uuidVersion: "O campo '{field}' deve ser um UUID da versão exigida.",
	classInstanceOf: "O campo '{field}' deve ser uma instância de '{expected}'.",
	objectID: "O campo '{field}' deve ser um ObjectID válido.",
	record: "O campo '{field}' deve ser um objeto.",
	// lib/validator.ts
	cpf: "O campo '{field}' deve ser um CPF válido: 11 dígitos ou 000.000.000-00, com dígitos verificadores corretos.",
	money: "O campo '{field}' deve ser um valor não negativo com no máximo duas casas decimais.",
	// Handlers' own checks (InvalidFieldError) when their English text is not one of MESSAGES_PT.
	pathMismatch: "'{field}' no corpo deve ser igual ao do caminho.",
	derived: "'{field}' é derivado de outro campo e não confere com ele; omita-o.",
	conflict: "'{field}' contradiz outro campo; envie só um deles.",
	range: "'{field}' é posterior ao fim do intervalo.",
	cursor: "O cursor '{field}' não foi dado por esta API.",
	invalid: "O campo '{field}' é inválido."
};

/** Items without a field: the ingest's errors about a whole line or body (lib/base-c/movement.ts). */
export const LINE_PT: Record<string, string> = {
	json: "A linha não é um JSON válido.",
	body: "Envie uma movimentação, uma lista JSON delas ou NDJSON.",
	object: "Cada movimentação deve ser um objeto JSON."
};

/** Checks whose English text is their own (field patterns in lib/fields.ts, handlers' checks), by that text. */
export const MESSAGES_PT: Record<string, string> = {
	"The 'nome' field may hold only letters, spaces, apostrophes, dots and hyphens.": "O campo 'nome' aceita só letras, espaços, apóstrofos, pontos e hífens.",
	"The 'endereco' field may hold only letters, digits, spaces and , . ' º ª ° # / ( ) -": "O campo 'endereco' aceita só letras, dígitos, espaços e , . ' º ª ° # / ( ) -",
	"The 'empresa' field may hold only letters, digits, spaces and & . , ' / -": "O campo 'empresa' aceita só letras, dígitos, espaços e & . , ' / -",
	"Send 'nome', 'endereco' or both.": "Envie 'nome', 'endereco' ou ambos.",
	"A birth date cannot be in the future.": "A data de nascimento não pode estar no futuro.",
	"A birth date more than 130 years ago is not plausible.": "Uma data de nascimento de mais de 130 anos não é plausível.",
	"A possession cannot start before the birth date.": "A posse de um bem não pode começar antes da data de nascimento.",
	"A possession cannot start in the future.": "A posse de um bem não pode começar no futuro.",
	"The 'datePagamento' field is required.": "O campo 'datePagamento' é obrigatório.",
	"A payment date cannot be in the future.": "A data de pagamento não pode estar no futuro.",
	"'datePagamento' and 'dataPagamento' disagree; send one of them.": "'datePagamento' e 'dataPagamento' não conferem; envie só um deles.",
	"'idade' is derived from 'dataNascimento' and does not match it; leave it out.": "'idade' é derivada de 'dataNascimento' e não confere com ela; omita-a.",
	"'from' is after 'to'.": "'from' é posterior a 'to'.",
	"The 'after' cursor is not one this API gave out.": "O cursor 'after' não foi dado por esta API."
};
