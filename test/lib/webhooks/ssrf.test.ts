import { describe, expect, it } from "vitest";
import { isForbiddenAddress, refuseTarget } from "../../../lib/webhooks/ssrf";

// Where webhooks may not go; the guarded lookup at connection time is tested end to end in
// test/services/monitoring.test.ts.
describe("isForbiddenAddress", () => {
	it.each([
		"127.0.0.1", "127.1.2.3", "10.0.0.1", "172.16.5.4", "172.31.255.255", "192.168.1.1", "169.254.169.254", "100.64.0.1",
		"0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
		"fd00:ec2::254", "not-an-address"
	])("refuses %s", address => expect(isForbiddenAddress(address)).toBe(true));

	it.each(["8.8.8.8", "1.1.1.1", "172.32.0.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])("allows %s", address => expect(isForbiddenAddress(address)).toBe(false));
});

describe("refuseTarget", () => {
	const open = { allowPrivate: false, httpsOnly: false };
	const resolvesTo = (address: string) => async () => [{ address, family: address.includes(":") ? 6 : 4 }];

	it("refuses a public name that resolves to a private address, and accepts a public one", async () => {
		expect(await refuseTarget("https://hooks.example/x", open, resolvesTo("10.0.0.7") as never)).toMatch(/private/);
		expect(await refuseTarget("https://hooks.example/x", open, resolvesTo("93.184.216.34") as never)).toBeNull();
	});

	it("refuses plain http in production, credentials in the URL, other schemes and non-URLs", async () => {
		const pub = resolvesTo("93.184.216.34") as never;
		expect(await refuseTarget("http://hooks.example/x", { allowPrivate: false, httpsOnly: true }, pub)).toMatch(/https/);
		expect(await refuseTarget("https://user:pw@hooks.example/x", open, pub)).toMatch(/credentials/);
		expect(await refuseTarget("gopher://hooks.example/", open, pub)).toMatch(/http/);
		expect(await refuseTarget("not a url", open, pub)).toMatch(/URL/);
	});

	it("lets loopback through only when the setting allows private addresses", async () => {
		expect(await refuseTarget("http://127.0.0.1:9/x", open)).toMatch(/private/);
		expect(await refuseTarget("http://127.0.0.1:9/x", { allowPrivate: true, httpsOnly: false })).toBeNull();
	});
});
