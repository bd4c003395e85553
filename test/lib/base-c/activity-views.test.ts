import { describe, expect, it } from "vitest";
import { decodeCursor, encodeCursor, movementView } from "../../../lib/base-c/activity-views";

describe("Base C's reader views", () => {
	it("gives a movement back in the API's units and date format", () => {
		expect(movementView({ tipo: "pix", valor_cents: 123456, data: "2025-03-01" })).toEqual({ tipo: "pix", valor: 1234.56, data: "01/03/2025" });
	});

	it("round-trips its own cursors and refuses anything else with a 422 on `after`", () => {
		const sort = [1735689600000, "movement-id"];
		expect(decodeCursor(encodeCursor(sort))).toEqual(sort);
		for (const bad of ["", "not base64 json", encodeCursor([1]), encodeCursor(["a", "b"]), encodeCursor([1, 2])]) {
			expect(() => decodeCursor(bad), bad).toThrow(expect.objectContaining({ code: 422 }));
		}
	});
});
