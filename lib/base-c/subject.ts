import { type Config, config, need } from "../../config";
import { pseudonymizer } from "../pii";

/**
 * Base C's key for a person: a keyed pseudonym of the CPF, so Base C holds no direct identifier.
 * Each service (or middleware) makes its own once, when created.
 */
export function activityPseudonym(cfg: Pick<Config, "pseudonymKey"> = config): (cpf: string) => string {
	return pseudonymizer(need(cfg as Config, "pseudonymKey"), "activity");
}
