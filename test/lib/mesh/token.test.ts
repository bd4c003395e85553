import { describe, expect, it } from "vitest";
import type { Group } from "../../../config/groups";
import { parseGroupKeys } from "../../../config/keys";
import { newGroupKeyPair } from "../../support/keys";
import { nowSeconds, signToken, TokenError, verifyToken, type CallerClaims, type GroupClaims } from "../../../lib/mesh/token";

/** Fresh key pairs of some groups, as parseGroupKeys reads them from MESH_KEYS and MESH_PUBLIC_KEYS. */
function keysOf(...groups: Group[]) {
	const pairs = groups.map(newGroupKeyPair);
	return {
		privateKeys: parseGroupKeys(pairs.map(p => p.privateKey).join(","), "private"),
		publicKeys: parseGroupKeys(pairs.map(p => p.publicKey).join(","), "public")
	};
}

const { privateKeys, publicKeys } = keysOf("base-a", "api", "operators");
const caller = (claims: Partial<CallerClaims> = {}): CallerClaims =>
	({ typ: "caller", sub: "consumer-1", name: "parceiro", scopes: ["persons:read"], rl: 60, rid: "req-1", iss: "base-a", exp: nowSeconds() + 120, ...claims });

/** The TokenError message of a refused token (and that it is a TokenError). */
function refusal(token: string, keys = publicKeys, now?: number): string {
	try {
		verifyToken(token, keys, now);
	} catch (err) {
		expect(err).toBeInstanceOf(TokenError);
		return (err as Error).message;
	}
	throw new Error("the token was accepted");
}

const part = (token: string, i: number) => token.split(".")[i];
const json = (segment: string) => JSON.parse(Buffer.from(segment, "base64url").toString());
const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

describe("signToken and verifyToken", () => {
	it("round-trip a caller token and a group token: a JWT with alg EdDSA", () => {
		const claims = caller();
		const token = signToken(claims, privateKeys.get("base-a")!);
		expect(token.split(".")).toHaveLength(3);
		expect(json(part(token, 0))).toEqual({ alg: "EdDSA", typ: "JWT" });
		expect(verifyToken(token, publicKeys)).toEqual(claims);

		const group: GroupClaims = { typ: "group", iss: "api", aud: "node:base-a-1", node: "api-1", exp: nowSeconds() + 300 };
		expect(verifyToken(signToken(group, privateKeys.get("api")!), publicKeys)).toEqual(group);
	});

	it("refuse a token whose claims were changed after signing", () => {
		const token = signToken(caller(), privateKeys.get("base-a")!);
		const more = encode({ ...json(part(token, 1)), scopes: ["persons:read", "privacy:admin"] });
		expect(refusal(`${part(token, 0)}.${more}.${part(token, 2)}`)).toBe("bad signature");
		const longer = encode({ ...json(part(token, 1)), exp: nowSeconds() + 86_400 });
		expect(refusal(`${part(token, 0)}.${longer}.${part(token, 2)}`)).toBe("bad signature");
	});

	it("refuse a changed or missing signature", () => {
		const token = signToken(caller(), privateKeys.get("base-a")!);
		const sig = Buffer.from(part(token, 2), "base64url");
		sig[0] ^= 1;
		expect(refusal(`${part(token, 0)}.${part(token, 1)}.${sig.toString("base64url")}`)).toBe("bad signature");
		expect(refusal(`${part(token, 0)}.${part(token, 1)}.`)).toBe("bad signature");
	});

	it("refuse a token one group signed in another group's name", () => {
		// The api group's key signing a caller token that says base-a issued it.
		expect(refusal(signToken(caller({ iss: "base-a" }), privateKeys.get("api")!))).toBe("bad signature");
		// A key of base-a that is not the one the mesh knows.
		const stranger = keysOf("base-a").privateKeys.get("base-a")!;
		expect(refusal(signToken(caller(), stranger))).toBe("bad signature");
	});

	it("refuse an issuer the verifier holds no key of, or that is no group", () => {
		const onlyApi = keysOf("api").publicKeys;
		expect(refusal(signToken(caller(), privateKeys.get("base-a")!), onlyApi)).toBe("unknown issuer");
		expect(refusal(signToken(caller({ iss: "root" as Group }), privateKeys.get("base-a")!))).toBe("unknown issuer");
		expect(refusal(signToken(caller({ iss: "__proto__" as Group }), privateKeys.get("base-a")!))).toBe("unknown issuer");
	});

	it("refuse an expired token, from the second of its exp on", () => {
		const now = nowSeconds();
		const token = signToken(caller({ exp: now + 10 }), privateKeys.get("base-a")!);
		expect(verifyToken(token, publicKeys, now + 9).exp).toBe(now + 10);
		expect(refusal(token, publicKeys, now + 10)).toBe("expired token");
		expect(refusal(signToken(caller({ exp: now - 1 }), privateKeys.get("base-a")!))).toBe("expired token");
		expect(refusal(signToken(caller({ exp: "never" as unknown as number }), privateKeys.get("base-a")!))).toBe("expired token");
	});

	it("refuse malformed tokens, and another header (no alg none)", () => {
		const token = signToken(caller(), privateKeys.get("base-a")!);
		const none = `${encode({ alg: "none", typ: "JWT" })}.${part(token, 1)}.`;
		for (const bad of ["", "a.b", "a.b.c.d", none, `${part(token, 0)}.bm90IGpzb24.${part(token, 2)}`, 123 as unknown as string]) {
			expect(refusal(bad), String(bad)).toBe("malformed token");
		}
		expect(refusal(`${part(token, 0)}.${encode(null)}.${part(token, 2)}`)).toBe("unknown issuer");
	});

	it("never put the token in the refusal", () => {
		const token = signToken(caller({ exp: nowSeconds() - 5 }), privateKeys.get("base-a")!);
		expect(refusal(token)).not.toContain(part(token, 1));
	});
});
