import { config, need } from "../../config";
import { pseudonymizer } from "../pii";

let pseudonym: ((cpf: string) => string) | undefined;

/** Base C's key for a person: a keyed pseudonym of the CPF, so Base C holds no direct identifier. */
export function activitySubject(cpf: string): string {
	pseudonym ??= pseudonymizer(need(config, "pseudonymKey"), "activity");
	return pseudonym(cpf);
}
