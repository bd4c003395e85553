import { generateKeyPairSync } from "node:crypto";
import type { Group } from "../../config/groups";
import { activityPseudonym } from "../../lib/base-c/subject";
import { type PiiCipher, piiCipherFromConfig } from "../../lib/pii";

// The tests' own cipher and pseudonym, made from the same settings as the services' (each service makes its own).
let cipher: PiiCipher | undefined;
export const piiCipher = (): PiiCipher => (cipher ??= piiCipherFromConfig());
export const activitySubject = activityPseudonym();

/** A new key pair of a group, in the text form of MESH_KEYS and MESH_PUBLIC_KEYS (config/keys.ts). */
export function newGroupKeyPair(group: Group): { privateKey: string; publicKey: string } {
	const pair = generateKeyPairSync("ed25519");
	return {
		privateKey: `${group}:${pair.privateKey.export({ format: "der", type: "pkcs8" }).toString("base64")}`,
		publicKey: `${group}:${pair.publicKey.export({ format: "der", type: "spki" }).toString("base64")}`
	};
}
