import { type Config, config, need } from "../../config";
import { pseudonymizer } from "../pii";

/**
 * Base C's key for a person: a keyed pseudonym of the CPF, so Base C holds no direct identifier.
 * Each service (or middleware) makes its own once, when created. Only the groups that hold
 * PSEUDONYM_KEY may: base-c-front, report, privacy and the consultations' publishers, never base-c,
 * which holds Elasticsearch's credential (docs/base-c.md, "Who holds what").
 */
export function activityPseudonym(cfg: Pick<Config, "pseudonymKey"> = config): (cpf: string) => string {
	return pseudonymizer(need(cfg as Config, "pseudonymKey"), "activity");
}

/**
 * What a pseudonym looks like: an HMAC-SHA256 in base64url, 43 characters. A CPF, bare (11 digits) or
 * formatted (14 characters), never matches, so an action of base-c that takes `subject` refuses a CPF.
 */
export const SUBJECT_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/** The `subject` parameter of base-c's actions (fastest-validator). */
export const subjectParam = { type: "string", pattern: SUBJECT_PATTERN } as const;
