import { BlockList, isIPv4, isIPv6 } from "node:net";
import { type NetworkInterfaceInfo, networkInterfaces } from "node:os";

/**
 * `10.0.9.0/24, 10.0.10.5, fd00::/8`: addresses and CIDR ranges, IPv4 or IPv6, as a BlockList (Node's
 * own matcher). Throws on anything else, naming the entry.
 */
export function parseAddressList(text: string): BlockList {
	const list = new BlockList();
	for (const entry of text.split(",").map(e => e.trim()).filter(Boolean)) {
		const [address, bits, extra] = entry.split("/");
		const family = isIPv4(address) ? "ipv4" : isIPv6(address) ? "ipv6" : null;
		const prefix = bits === undefined ? (family === "ipv4" ? 32 : 128) : Number(bits);
		if (!family || extra !== undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > (family === "ipv4" ? 32 : 128)) {
			throw new Error(`'${entry}' is not an address or CIDR range`);
		}
		list.addSubnet(address, prefix, family);
	}
	return list;
}

/**
 * Where a listener binds: `host` as given, or, when it is a CIDR range (METRICS_HOST=10.214.0.0/24, the
 * stack's `monitoring` network), this machine's own address inside it, so the listener is on that
 * network alone. Throws when no interface has an address in the range.
 */
export function listenAddress(host: string, interfaces: NodeJS.Dict<NetworkInterfaceInfo[]> = networkInterfaces()): string {
	if (!host.includes("/")) return host;
	const range = parseAddressList(host);
	for (const info of Object.values(interfaces).flat()) {
		if (info && range.check(info.address, info.family === "IPv4" ? "ipv4" : "ipv6")) return info.address;
	}
	throw new Error(`No network interface has an address in ${host}`);
}
