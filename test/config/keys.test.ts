import { generateKeyPairSync, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { parseDataKeys, parseGroupKeys } from "../../config/keys";
import { newGroupKeyPair } from "../support/keys";

const k1 = { id: "k1", key: randomBytes(32) };
const k2 = { id: "k2", key: randomBytes(32) };

describe("parseGroupKeys", () => {
	it("reads group:base64(DER) pairs, private and public", () => {
		const a = newGroupKeyPair("report");
		const b = newGroupKeyPair("privacy");
		const priv = parseGroupKeys(` ${a.privateKey} , ${b.privateKey},`, "private");
		expect([...priv.keys()]).toEqual(["report", "privacy"]);
		expect(priv.get("report")!.type).toBe("private");
		const pub = parseGroupKeys(`${a.publicKey},${b.publicKey}`, "public");
		expect(pub.get("privacy")!.type).toBe("public");
		expect(pub.get("report")!.asymmetricKeyType).toBe("ed25519");
		expect(parseGroupKeys("", "public").size).toBe(0);
	});

	it("refuses an unknown group, a missing name, the wrong kind of key and keys other than Ed25519", () => {
		const pair = newGroupKeyPair("api");
		const der = pair.privateKey.slice("api:".length);
		expect(() => parseGroupKeys(`root:${der}`, "private")).toThrow(/unknown group 'root'/);
		expect(() => parseGroupKeys(`:${der}`, "private")).toThrow(/needs 'group:'/);
		expect(() => parseGroupKeys(der, "private")).toThrow(/needs 'group:'/);
		// The refusal names no key material, even when the entry is nothing but a key.
		for (const entry of [der, `${der.slice(0, 20)}:${der.slice(20)}`]) {
			try {
				parseGroupKeys(entry, "private");
			} catch (err) {
				expect((err as Error).message).not.toContain(der.slice(0, 20));
			}
		}
		expect(() => parseGroupKeys(pair.privateKey, "public")).toThrow();
		expect(() => parseGroupKeys("api:bm90IGEga2V5", "private")).toThrow();
		const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey.export({ format: "der", type: "pkcs8" }).toString("base64");
		expect(() => parseGroupKeys(`api:${rsa}`, "private")).toThrow(/not Ed25519/);
	});
});

describe("parseDataKeys", () => {
	it("parses ids and keys, first is current", () => {
		const spec = `new:${k2.key.toString("base64")},old:${k1.key.toString("base64")}`;
		expect(parseDataKeys(spec).map(k => k.id)).toEqual(["new", "old"]);
	});
	it.each(["nokey", `:${k1.key.toString("base64")}`, `k1:${randomBytes(16).toString("base64")}`, `bad id:${k1.key.toString("base64")}`,
		// one id twice: a value sealed under it could not be opened (every new write failed)
		`k1:${k1.key.toString("base64")},k1:${k2.key.toString("base64")}`])(
		"rejects %j", spec => expect(() => parseDataKeys(spec)).toThrow());
});
