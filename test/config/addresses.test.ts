import { describe, expect, it } from "vitest";
import { listenAddress, parseAddressList } from "../../config/addresses";

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

describe("listenAddress", () => {
	const interfaces = {
		lo: [{ address: "127.0.0.1", family: "IPv4" }],
		eth0: [{ address: "10.213.0.7", family: "IPv4" }, { address: "fe80::1", family: "IPv6" }],
		eth1: [{ address: "10.214.0.9", family: "IPv4" }]
	} as any;

	it("binds to this machine's own address in a CIDR range: that network alone", () => {
		expect(listenAddress("10.214.0.0/24", interfaces)).toBe("10.214.0.9");
		expect(listenAddress("10.213.0.0/24", interfaces)).toBe("10.213.0.7");
	});

	it("takes an address as given, and refuses a range no interface is in", () => {
		expect(listenAddress("0.0.0.0", interfaces)).toBe("0.0.0.0");
		expect(() => listenAddress("10.215.0.0/24", interfaces)).toThrow(/No network interface has an address in 10.215.0.0\/24/);
	});
});
