import { activityPseudonym } from "../../lib/base-c/subject";
import { type PiiCipher, piiCipherFromConfig } from "../../lib/pii";

// The tests' own cipher and pseudonym, made from the same settings as the services' (each service makes its own).
let cipher: PiiCipher | undefined;
export const piiCipher = (): PiiCipher => (cipher ??= piiCipherFromConfig());
export const activitySubject = activityPseudonym();
