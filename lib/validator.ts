import type { CheckerFunctionError, CompilationRule, Context as RuleContext, default as FastestValidator, MessagesType, ValidatorConstructorOptions } from "fastest-validator";
import { Validators } from "moleculer";
import { normalizeCpf } from "./cpf";
import { parseDate } from "./dates";
import { toCents } from "./money";

type Parse = (value: unknown) => unknown;

/** fastest-validator as a custom rule's compiler sees it (`this`): its types leave `makeCustomValidator` out. */
interface RuleCompiler {
	makeCustomValidator(opts: { fnName: string; path: string; schema: object; messages: MessagesType; context: RuleContext; ruleIndex: number }): string;
}

/** Moleculer's fastest-validator wrapper: its types leave out `validator`, the fastest-validator it compiles with. */
export type MoleculerFastestValidator = InstanceType<typeof Validators.Fastest> & { validator: FastestValidator };

/**
 * A fastest-validator rule from a parse function: the parsed value replaces the input
 * (`529.982.247-25` → `52998224725`, `15/03/2024` → `2024-03-15`), null means invalid.
 */
function parsedRule(type: string, parse: Parse) {
	return function (this: RuleCompiler, { schema, messages, index }: CompilationRule, path: string, context: RuleContext) {
		const check = (value: unknown, errors: CheckerFunctionError[]) => {
			const parsed = parse(value);
			if (parsed === null) errors.push({ type });
			return parsed ?? value;
		};
		const source = this.makeCustomValidator({ fnName: "check", path, schema: { ...schema, check }, messages, context, ruleIndex: index });
		return { sanitized: true, source: `${source}\nreturn value;` };
	};
}

export const customRules = {
	cpf: parsedRule("cpf", normalizeCpf),
	date: parsedRule("date", parseDate),
	money: parsedRule("money", v => (toCents(v) === null ? null : v))
};

// Messages never echo the offending value: it may be a CPF or a name.
export const messages = {
	cpf: "The '{field}' field must be a valid CPF: 11 digits or 000.000.000-00 with correct check digits.",
	date: "The '{field}' field must be a real date as DD/MM/YYYY or YYYY-MM-DD.",
	money: "The '{field}' field must be a non-negative amount with at most two decimals.",
	arrayUnique: "The '{field}' field must not contain duplicate values.",
	arrayEnum: "The '{field}' field contains a value outside '{expected}'."
};

// An optional field sent as `null` is refused (422) instead of passing as "absent" into a handler that
// expects a string; a rule that means to take null says `nullable: true`.
const NOT_NULL = { nullable: false };
const defaults = Object.fromEntries(
	["string", "number", "boolean", "enum", "array", "object", "uuid", "email", "url", "cpf", "date", "money"].map(t => [t, NOT_NULL])
);

export const VALIDATOR_OPTIONS: ValidatorConstructorOptions = {
	useNewCustomCheckerFunction: true, haltOnFirstError: false, considerNullAsAValue: true,
	// fastest-validator's types ask for a default of every rule; it takes any of them.
	defaults: defaults as ValidatorConstructorOptions["defaults"],
	customRules, messages
};

export function createValidator() {
	return new Validators.Fastest(VALIDATOR_OPTIONS);
}
