import { describe, expect, it } from "vitest";
import { BOOTSTRAP_ADMIN_ID, SCOPES } from "../../lib/scopes";
import { ROUTES } from "../../lib/gateway/routes";

describe("SCOPES", () => {
	it("are distinct resource:verb names", () => {
		expect(new Set(SCOPES).size).toBe(SCOPES.length);
		for (const scope of SCOPES) expect(scope).toMatch(/^[a-z]+:[a-z]+$/);
	});

	it("each guard a route, but debts:admin, which lets a key settle debts it did not record", () => {
		const guarding = new Set(ROUTES.map(r => r.scope));
		expect(SCOPES.filter(s => !guarding.has(s))).toEqual(["debts:admin"]);
	});
});

describe("BOOTSTRAP_ADMIN_ID", () => {
	it("is a fixed UUID v4 the consumers table can hold", () => {
		expect(BOOTSTRAP_ADMIN_ID).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
	});
});
