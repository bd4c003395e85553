import { BlockList } from "node:net";
import { describe, expect, it } from "vitest";
import { checkBody, checkIdempotencyKey, checkPathParamsInBody, clientAddress } from "../../../lib/gateway/request-checks";

describe("the gateway's request checks", () => {
	it("refuses a body of a media type the route does not take, and lets a bodiless POST through", () => {
		expect(() => checkBody("POST", { "content-type": "text/plain", "content-length": "2" })).toThrow(expect.objectContaining({ code: 415 }));
		expect(() => checkBody("POST", { "content-type": "application/json; charset=utf-8", "content-length": "2" })).not.toThrow();
		expect(() => checkBody("POST", { "content-type": "application/x-ndjson", "transfer-encoding": "chunked" }, ["application/json", "application/x-ndjson"])).not.toThrow();
		expect(() => checkBody("POST", { "content-length": "0" })).not.toThrow();
		expect(() => checkBody("GET", { "content-type": "text/plain", "content-length": "2" })).not.toThrow();
	});

	it("lets a body repeat a path parameter but not contradict it (a CPF compared by its digits)", () => {
		const keys = [{ name: "cpf" }];
		expect(() => checkPathParamsInBody({ cpf: "529.982.247-25" }, keys, { cpf: "52998224725" })).not.toThrow();
		expect(() => checkPathParamsInBody({ cpf: "11144477735" }, keys, { cpf: "52998224725" })).toThrow(expect.objectContaining({ code: 422 }));
		expect(() => checkPathParamsInBody({ cpf: "not a cpf" }, keys, { cpf: "not a cpf" })).toThrow();
		expect(() => checkPathParamsInBody({ id: "b" }, [{ name: "id" }], { id: "a" })).toThrow();
		expect(() => checkPathParamsInBody("text", keys, { cpf: "52998224725" })).not.toThrow();
	});

	it("takes an Idempotency-Key of 1–128 safe characters only", () => {
		expect(checkIdempotencyKey("order-1:a.b_c")).toBe("order-1:a.b_c");
		expect(() => checkIdempotencyKey("x".repeat(129))).toThrow(expect.objectContaining({ code: 400, type: "INVALID_IDEMPOTENCY_KEY" }));
		expect(() => checkIdempotencyKey("a b")).toThrow();
	});

	it("believes X-Forwarded-For only from a trusted proxy, and only its last hop", () => {
		const proxies = new BlockList();
		proxies.addSubnet("10.0.0.0", 8);
		expect(clientAddress("::ffff:203.0.113.9", "198.51.100.1", proxies)).toBe("203.0.113.9");
		expect(clientAddress("10.0.0.2", "198.51.100.1, 203.0.113.7", proxies)).toBe("203.0.113.7");
		expect(clientAddress("::ffff:10.0.0.2", "garbage", proxies)).toBe("10.0.0.2");
		expect(clientAddress(undefined, undefined, proxies)).toBe("unknown");
	});
});
