import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import FastestValidator from "fastest-validator";
import { describe, expect, it } from "vitest";
import { localize, preferredLanguage } from "../../../lib/gateway/language";
import { toHttpError } from "../../../lib/gateway/errors";
import { ERRORS_PT, LINE_PT, MESSAGES_PT, VALIDATION_PT } from "../../../lib/gateway/messages-pt";
import { messages as OUR_RULE_MESSAGES } from "../../../lib/validator";
import { BaseUnavailableError, ConflictError, InvalidFieldError, NotFoundError } from "../../../lib/errors";

// fastest-validator's own catalogue, as an instance holds it (its types leave `messages` out).
const fastestMessages = (new FastestValidator() as unknown as { messages: Record<string, string> }).messages;

/** Every TypeScript file of the code that answers clients. */
function sources(): string {
	const files: string[] = [];
	const walk = (dir: string) => {
		for (const e of readdirSync(dir, { withFileTypes: true })) {
			if (e.isDirectory()) walk(join(dir, e.name));
			else if (e.name.endsWith(".ts")) files.push(join(dir, e.name));
		}
	};
	for (const dir of ["services", "middlewares", "mixins", "lib"]) walk(dir);
	return files.filter(f => !f.endsWith("messages-pt.ts")).map(f => readFileSync(f, "utf8")).join("\n");
}

describe("preferredLanguage (Accept-Language)", () => {
	it.each([
		[undefined, "en"], ["", "en"], ["en-US,en;q=0.9", "en"], ["pt-BR", "pt-BR"], ["pt-BR,pt;q=0.9,en;q=0.8", "pt-BR"],
		["pt", "pt-BR"], ["pt-PT", "pt-BR"], ["en;q=0.9,pt;q=0.5", "en"], ["en;q=0.4,pt-BR;q=0.8", "pt-BR"], ["fr-FR", "en"], ["*", "en"], ["pt;q=0", "en"]
	])("%s → %s", (header, language) => {
		expect(preferredLanguage(header)).toBe(language);
	});
});

describe("the Portuguese catalogue", () => {
	it("has a message for every rule type of fastest-validator and of lib/validator.ts", () => {
		const missing = [...Object.keys(fastestMessages), ...Object.keys(OUR_RULE_MESSAGES)].filter(t => !VALIDATION_PT[t]);
		expect(missing).toEqual([]);
	});

	it("has a message for every error type the code throws", () => {
		const code = sources();
		const types = new Set<string>();
		// `type: "X"`, `Error(…, "X")` and `new XError("X", …)`: the error types a client can receive.
		for (const m of code.matchAll(/type: "([A-Z][A-Z0-9_]{3,})"/g)) types.add(m[1]);
		for (const m of code.matchAll(/Error\((?:[^()]|\([^()]*\))*?"([A-Z][A-Z0-9_]{3,})"/g)) types.add(m[1]);
		expect(types.size).toBeGreaterThan(10);
		expect([...types].filter(t => !ERRORS_PT[t])).toEqual([]);
	});

	it("translates every handler check and field pattern by its English text, and every English text it knows is still in the code", () => {
		const code = sources();
		const own = [
			...[...code.matchAll(/new InvalidFieldError\([^,]+,\s*"([^"]+)"/g)].map(m => m[1]),
			...[...code.matchAll(/stringPattern: "([^"]+)"/g)].map(m => m[1])
		];
		expect(own.length).toBeGreaterThan(5);
		expect(own.filter(m => !MESSAGES_PT[m])).toEqual([]);
		expect(Object.keys(MESSAGES_PT).filter(m => !code.includes(m))).toEqual([]);
	});

	it("leaves no placeholder unfilled and no English rule text behind", () => {
		for (const [type, english] of Object.entries(fastestMessages)) {
			const answer = localize({ status: 422, body: { name: "ValidationError", message: "Parameters validation error!", code: 422, type: "VALIDATION_ERROR", data: [{ type, field: "campo", message: english, expected: 3 }] } }, "pt-BR");
			const [item] = answer.body.data as { message: string }[];
			expect(item.message, type).not.toMatch(/\{|The '/);
			expect(item.message, type).toContain("campo");
		}
		expect(Object.keys(LINE_PT).length).toBe(3);
	});
});

describe("localize", () => {
	it("keeps name, code, type and fields, and changes only the messages", () => {
		const english = toHttpError(Object.assign(new Error("Parameters validation error!"), {
			code: 422, name: "ValidationError", type: "VALIDATION_ERROR",
			data: [{ type: "stringMax", field: "nome", message: "The 'nome' field length must be less than or equal to 200 characters long.", expected: 200, actual: "Fulano" }]
		}));
		const pt = localize(english, "pt-BR");
		expect(pt.status).toBe(422);
		expect(pt.body).toEqual({
			name: "ValidationError", code: 422, type: "VALIDATION_ERROR", message: "Erro de validação dos parâmetros",
			data: [{ index: undefined, type: "stringMax", field: "nome", expected: 200, message: "O campo 'nome' deve ter no máximo 200 caracteres." }]
		});
		expect(localize(english, "en")).toBe(english);
	});

	it("never shows a value the client sent, even where fastest-validator puts one in `expected`", () => {
		const cpf = "52998224725";
		const answer = toHttpError(Object.assign(new Error("x"), { code: 422, name: "ValidationError", type: "VALIDATION_ERROR", data: [{ type: "arrayUnique", field: "cpfs", message: "The 'cpfs' field must not contain duplicate values.", expected: [cpf], actual: [cpf, cpf] }] }));
		expect(JSON.stringify(answer)).not.toContain(cpf);
		expect(JSON.stringify(localize(answer, "pt-BR"))).not.toContain(cpf);
	});

	it.each([
		[new NotFoundError("Person"), "Pessoa não encontrada"],
		[new NotFoundError("Debt"), "Dívida não encontrada"],
		[new ConflictError("A person with this CPF already exists", "PERSON_EXISTS"), "Já existe uma pessoa com este CPF"],
		[new BaseUnavailableError("A"), "A base está indisponível; tente de novo mais tarde"],
		[new InvalidFieldError("dataNascimento", "A birth date cannot be in the future.", "dateMax"), "Erro de validação dos parâmetros"],
		[new Error("boom: SELECT * FROM persons"), "Erro inesperado; informe o X-Request-Id ao relatá-lo"]
	])("%s", (err, message) => {
		expect(localize(toHttpError(err), "pt-BR").body.message).toBe(message);
	});
});
