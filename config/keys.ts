import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { isGroup, type Group } from "./groups";

// The keys the settings carry, parsed from their text form: config reads them once, lib/ uses them.

export interface DataKey {
	id: string;
	key: Buffer;
}

/** Parses `PII_KEYS`: `id:base64key[,id:base64key…]`, the first being the current key. */
export function parseDataKeys(spec: string): DataKey[] {
	const keys = spec
		.split(",")
		.map(s => s.trim())
		.filter(Boolean)
		.map(entry => {
			const sep = entry.indexOf(":");
			const id = entry.slice(0, sep);
			const key = Buffer.from(entry.slice(sep + 1), "base64");
			if (sep < 1 || !/^[A-Za-z0-9_-]{1,32}$/.test(id)) throw new Error("each key needs an id of letters, digits, _ or - before ':'");
			if (key.length !== 32) throw new Error(`key '${id}' must be 32 bytes, base64-encoded`);
			return { id, key };
		});
	// Two keys under one id: a value sealed under the id could not be told which to open with.
	const ids = new Set(keys.map(k => k.id));
	if (ids.size !== keys.length) throw new Error("each key id must appear once");
	return keys;
}

/** `group:base64(DER)` pairs, comma separated: PKCS#8 private keys or SPKI public keys. */
export function parseGroupKeys(text: string, kind: "private" | "public"): Map<Group, KeyObject> {
	const keys = new Map<Group, KeyObject>();
	for (const entry of text.split(",").map(s => s.trim()).filter(Boolean)) {
		const colon = entry.indexOf(":");
		if (colon < 1) throw new Error("each entry needs 'group:' before its key");
		const group = entry.slice(0, colon);
		// Only a name that could be a group is echoed: a key pasted without its name must not reach a log.
		if (!isGroup(group)) throw new Error(/^[a-z-]{1,20}$/.test(group) ? `unknown group '${group}'` : "unknown group");
		const der = Buffer.from(entry.slice(colon + 1), "base64");
		const key = kind === "private" ? createPrivateKey({ key: der, format: "der", type: "pkcs8" }) : createPublicKey({ key: der, format: "der", type: "spki" });
		if (key.asymmetricKeyType !== "ed25519") throw new Error(`the key of '${group}' is not Ed25519`);
		keys.set(group, key);
	}
	return keys;
}
