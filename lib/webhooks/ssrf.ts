import { BlockList, isIP } from "node:net";
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from "node:dns";
import { lookup as dnsLookupAsync } from "node:dns/promises";

/**
 * Where a webhook may not go (SSRF): loopback, private, carrier-grade NAT, link-local (cloud metadata
 * at 169.254.169.254 and fd00:ec2::254 included), multicast, reserved and unspecified ranges, and their
 * IPv4-mapped IPv6 forms.
 */
const blocked = new BlockList();
for (const [net, bits] of [
	["0.0.0.0", 8], ["10.0.0.0", 8], ["100.64.0.0", 10], ["127.0.0.0", 8], ["169.254.0.0", 16], ["172.16.0.0", 12],
	["192.0.0.0", 24], ["192.0.2.0", 24], ["192.168.0.0", 16], ["198.18.0.0", 15], ["198.51.100.0", 24], ["203.0.113.0", 24],
	["224.0.0.0", 4], ["240.0.0.0", 4]
] as const) blocked.addSubnet(net, bits, "ipv4");
for (const [net, bits] of [
	["::", 128], ["::1", 128], ["fc00::", 7], ["fe80::", 10], ["ff00::", 8], ["64:ff9b::", 96], ["2001:db8::", 32], ["fd00:ec2::", 32]
] as const) blocked.addSubnet(net, bits, "ipv6");

/** True when an address is one a webhook may not reach. */
export function isForbiddenAddress(address: string): boolean {
	const family = isIP(address);
	if (family === 0) return true;
	if (family === 6) {
		const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
		if (mapped) return blocked.check(mapped[1], "ipv4");
		return blocked.check(address, "ipv6");
	}
	return blocked.check(address, "ipv4");
}

export interface EgressPolicy {
	/** Loopback and private addresses allowed (development and tests). */
	allowPrivate: boolean;
	/** Only https URLs (production). */
	httpsOnly: boolean;
}

export class ForbiddenTargetError extends Error {
	constructor(readonly reason: string) {
		super(`Webhook target refused: ${reason}`);
		this.name = "ForbiddenTargetError";
	}
}

/** Why a URL may not be a webhook endpoint (scheme, credentials, a forbidden address it resolves to), or null. */
export async function refuseTarget(raw: string, policy: EgressPolicy, resolve = dnsLookupAsync): Promise<string | null> {
	let url: URL;
	try {
		url = new URL(raw);
	} catch {
		return "not a URL";
	}
	if (url.protocol !== "https:" && !(url.protocol === "http:" && !policy.httpsOnly)) return policy.httpsOnly ? "only https is allowed" : "only http(s) is allowed";
	if (url.username || url.password) return "credentials in the URL are not allowed";
	if (policy.allowPrivate) return null;
	const host = url.hostname.replace(/^\[|\]$/g, "");
	let addresses: string[];
	try {
		addresses = isIP(host) ? [host] : (await resolve(host, { all: true, verbatim: true })).map(a => a.address);
	} catch {
		return "the host does not resolve";
	}
	return addresses.some(isForbiddenAddress) ? "the host resolves to a private, loopback or link-local address" : null;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for http(s).request: resolves as usual, then refuses a forbidden address, so the check is
 * made on the address actually connected to (a DNS answer that changes after the subscription was
 * checked — rebinding — is caught here).
 */
export function guardedLookup(policy: EgressPolicy) {
	return (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
		dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
			if (err) return callback(err, []);
			const list = addresses as LookupAddress[];
			const allowed = policy.allowPrivate ? list : list.filter(a => !isForbiddenAddress(a.address));
			if (allowed.length === 0) return callback(Object.assign(new ForbiddenTargetError("forbidden address"), { code: "EFORBIDDEN" }), []);
			if (options.all) return callback(null, allowed);
			callback(null, allowed[0].address, allowed[0].family);
		});
	};
}
