import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { GROUP_NAMES, GROUPS, groupOf, isGroup, SERVICE_GROUPS, TOKEN_ISSUER } from "../../config/groups";

describe("groups", () => {
	it("put every service of services/ in exactly one group", () => {
		const services = readdirSync("services").filter(f => f.endsWith(".service.ts")).map(f => f.replace(/\.service\.ts$/, "")).sort();
		const grouped = Object.values(GROUPS).flat();
		expect([...grouped].sort()).toEqual(services);
		expect(new Set(grouped).size).toBe(grouped.length);
	});

	it("are the groups engines.sh makes keys and NATS users for", () => {
		const line = /^MESH_GROUPS="([^"]+)"/m.exec(readFileSync("scripts/engines.sh", "utf8"));
		expect(line?.[1].split(" ")).toEqual(GROUP_NAMES);
	});

	it("run services in every group but operators (the REPL)", () => {
		expect(Object.keys(SERVICE_GROUPS)).toEqual(GROUP_NAMES.filter(g => g !== "operators"));
		expect(GROUPS.operators).toEqual([]);
	});

	it("give caller tokens to the group that holds the API keys", () => {
		expect(groupOf("consumers")).toBe(TOKEN_ISSUER);
	});
});

describe("groupOf", () => {
	it("names the group of a service or of an action", () => {
		expect(groupOf("persons")).toBe("base-a");
		expect(groupOf("cpf-lookup.get")).toBe("base-a");
		expect(groupOf("asset-score.get")).toBe("base-b");
		expect(groupOf("transaction-ingest")).toBe("base-c-front");
		expect(groupOf("activity-front.get")).toBe("base-c-front");
		expect(groupOf("transaction-writer")).toBe("base-c");
		expect(groupOf("activity.get")).toBe("base-c");
		expect(groupOf("api.rest")).toBe("api");
		expect(groupOf("privacy.erase")).toBe("privacy");
	});

	it("names none for what is not one of our services", () => {
		for (const name of ["$node.list", "$node", "persons-x.get", "base-a", "operators", "", null, undefined]) expect(groupOf(name), String(name)).toBeUndefined();
	});
});

describe("isGroup", () => {
	it("takes the group names and nothing from Object.prototype", () => {
		for (const g of GROUP_NAMES) expect(isGroup(g)).toBe(true);
		for (const name of ["toString", "__proto__", "constructor", "hasOwnProperty", "persons", "API", ""]) expect(isGroup(name), name).toBe(false);
	});
});
