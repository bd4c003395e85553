import { describe, expect, it } from "vitest";
import { formatDate, parseDate } from "../../lib/dates";

describe("parseDate", () => {
	it.each([
		["15/03/2024", "2024-03-15"],
		["2024-03-15", "2024-03-15"],
		["29/02/2024", "2024-02-29"],
		["31/12/1999", "1999-12-31"]
	])("accepts %s", (input, iso) => expect(parseDate(input)).toBe(iso));

	it.each(["31/02/2024", "29/02/2023", "2023-02-29", "00/01/2024", "32/01/2024", "15/13/2024", "2024-13-01",
		"15-03-2024", "2024/03/15", "1/3/2024", "XX/XX/XXXX", "15/03/1899", "", "2024-03-15T00:00:00Z"])(
		"rejects %j", input => expect(parseDate(input)).toBeNull());

	it("formats ISO as DD/MM/YYYY", () => {
		expect(formatDate("2024-03-15")).toBe("15/03/2024");
		expect(formatDate(new Date(Date.UTC(2024, 0, 2)))).toBe("02/01/2024");
		expect(formatDate(null)).toBeNull();
	});
});
