import { describe, expect, it } from "vitest";
import { parseAddressList } from "../../config/addresses";

describe("parseAddressList", () => {
	it("matches addresses and CIDR ranges, IPv4 and IPv6", () => {
		const list = parseAddressList(" 10.0.9.0/24, 127.0.0.1 , fd00::/8");
		expect(list.check("10.0.9.77", "ipv4")).toBe(true);
		expect(list.check("10.0.10.1", "ipv4")).toBe(false);
		expect(list.check("127.0.0.1", "ipv4")).toBe(true);
		expect(list.check("127.0.0.2", "ipv4")).toBe(false);
		expect(list.check("fd12::1", "ipv6")).toBe(true);
		expect(list.check("fe80::1", "ipv6")).toBe(false);
	});

	it("is empty (believes no one) when unset", () => {
		expect(parseAddressList("").check("127.0.0.1", "ipv4")).toBe(false);
	});

	it.each(["localhost", "10.0.0.0/33", "10.0.0.1/8/2", "::1/129", "10.0.0.x"])("refuses %j", entry => {
		expect(() => parseAddressList(entry)).toThrow(/is not an address or CIDR range/);
	});
});
