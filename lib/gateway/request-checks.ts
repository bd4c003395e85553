import type { IncomingHttpHeaders } from "node:http";
import { type BlockList, isIP, isIPv4 } from "node:net";
import { normalizeCpf } from "../cpf";
import { InvalidFieldError } from "../errors";
import { IDEMPOTENCY_KEY_PATTERN } from "../openapi";

/** The gateway's checks of a request's shape, run once its key and scope are known. */

const IDEMPOTENCY_KEY = new RegExp(IDEMPOTENCY_KEY_PATTERN);

const httpError = (code: number, name: string, type: string, message: string) => Object.assign(new Error(message), { code, name, type });

/** Bodies of other media types than the route accepts are refused before they reach a service. */
export function checkBody(method: string | undefined, headers: IncomingHttpHeaders, accepts: readonly string[] = ["application/json"]): void {
	if (!["POST", "PUT", "PATCH"].includes(method ?? "")) return;
	// No body at all (a POST that only triggers, like a delivery's replay): no media type to refuse.
	const length = headers["content-length"];
	if (headers["transfer-encoding"] === undefined && (length === undefined || length === "0")) return;
	const type = (headers["content-type"] ?? "").split(";")[0].trim().toLowerCase();
	if (!accepts.includes(type)) throw httpError(415, "UnsupportedMediaType", "UNSUPPORTED_MEDIA_TYPE", `Send the body as ${accepts.join(" or ")}`);
}

/** A body may repeat a path parameter (payload B carries its cpf) but must not contradict it. */
export function checkPathParamsInBody(body: unknown, pathKeys: readonly { name: string }[], pathParams: Record<string, unknown> | undefined): void {
	if (!body || typeof body !== "object") return;
	const fields = body as Record<string, unknown>;
	for (const { name } of pathKeys) {
		if (!(name in fields)) continue;
		const inPath = pathParams?.[name];
		const same = name === "cpf" ? normalizeCpf(fields[name]) !== null && normalizeCpf(fields[name]) === normalizeCpf(inPath) : fields[name] === inPath;
		if (!same) throw new InvalidFieldError(name, `'${name}' in the body must match the path.`, "pathMismatch");
	}
}

export function checkIdempotencyKey(key: string): string {
	if (!IDEMPOTENCY_KEY.test(key)) throw httpError(400, "BadRequestError", "INVALID_IDEMPOTENCY_KEY", "Idempotency-Key must be 1–128 characters of letters, digits and . _ : -");
	return key;
}

/** `::ffff:10.0.0.5` (an IPv4 client on a dual-stack socket) as `10.0.0.5`. */
const unmapped = (address: string) => (address.startsWith("::ffff:") && isIPv4(address.slice(7)) ? address.slice(7) : address);

/**
 * The client's address: the socket's, or, on a connection from our proxy (`trustedProxies`: the
 * stack's TLS edge), the address it appended to X-Forwarded-For. Anyone else's X-Forwarded-For is
 * ignored, and so is what a client wrote there before our proxy appended.
 */
export function clientAddress(socketAddress: string | undefined, forwardedFor: string | string[] | undefined, trustedProxies: BlockList): string {
	const socket = unmapped(socketAddress ?? "unknown");
	if (!isIP(socket) || !trustedProxies.check(socket, isIPv4(socket) ? "ipv4" : "ipv6")) return socket;
	const forwarded = unmapped(String(forwardedFor ?? "").split(",").pop()?.trim() ?? "");
	return isIP(forwarded) ? forwarded : socket;
}
