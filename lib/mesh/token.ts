import { sign, verify, type KeyObject } from "node:crypto";
import { isGroup, type Group } from "../../config/groups";

/**
 * Signed tokens of the mesh: JSON Web Tokens (RFC 7519) signed with Ed25519 (`alg: EdDSA`, RFC 8037),
 * made and checked with node:crypto alone. Two kinds travel:
 * - a caller token (`typ` "caller"): who the request is for (an API consumer or an operator), their
 *   scopes, the request that authenticated them; signed by the group that checks API keys (or by the
 *   operators' key), carried in `ctx.meta.callerToken` into every nested call;
 * - a group token (`typ` "group"): which group makes this call, to which node (`aud`), so it cannot be
 *   replayed against any other; carried in the call's headers, never propagated.
 */
export interface CallerClaims {
	typ: "caller";
	/** consumer id, or `operator:<user>@<host>` */
	sub: string;
	name?: string;
	scopes: string[];
	/** the purposes (lib/purposes.ts) the key may consult for; none when absent */
	fin?: string[];
	/** rate limit of the key per minute (gateway only) */
	rl?: number;
	/** the request that authenticated the key */
	rid?: string;
	iss: Group;
	exp: number;
}

export interface GroupClaims {
	typ: "group";
	iss: Group;
	/** `node:<id>`: the one node the call goes to */
	aud: string;
	/** the node that signed it, for logs */
	node: string;
	exp: number;
}

export type MeshClaims = CallerClaims | GroupClaims;

const HEADER = Buffer.from(JSON.stringify({ alg: "EdDSA", typ: "JWT" })).toString("base64url");

/** Seconds since the epoch, the unit of `exp`. */
export const nowSeconds = () => Math.floor(Date.now() / 1000);

export function signToken(claims: MeshClaims, key: KeyObject): string {
	const input = `${HEADER}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}`;
	return `${input}.${sign(null, Buffer.from(input), key).toString("base64url")}`;
}

/** Why a token was refused; never the token itself. */
export class TokenError extends Error {
	override name = "TokenError";
}

/**
 * The claims of a token whose signature one of `keys` made (the key of its `iss`), not expired.
 * Throws TokenError otherwise.
 */
export function verifyToken(token: string, keys: ReadonlyMap<Group, KeyObject>, now = nowSeconds()): MeshClaims {
	const parts = typeof token === "string" ? token.split(".") : [];
	if (parts.length !== 3 || parts[0] !== HEADER) throw new TokenError("malformed token");
	let claims: MeshClaims;
	try {
		claims = JSON.parse(Buffer.from(parts[1], "base64url").toString());
	} catch {
		throw new TokenError("malformed token");
	}
	const key = claims && typeof claims.iss === "string" && isGroup(claims.iss) ? keys.get(claims.iss) : undefined;
	if (!key) throw new TokenError("unknown issuer");
	if (!verify(null, Buffer.from(`${parts[0]}.${parts[1]}`), key, Buffer.from(parts[2], "base64url"))) throw new TokenError("bad signature");
	if (typeof claims.exp !== "number" || claims.exp <= now) throw new TokenError("expired token");
	return claims;
}
