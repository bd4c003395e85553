import { describe, expect, it } from "vitest";
import { index, MAPPINGS } from "../../../lib/base-c/indices";
import { toRecords } from "../../../lib/base-c/movement";
import { config } from "../../../config";

describe("Base C indices", () => {
	it("are named with the configured prefix", () => {
		expect(index.movements()).toBe(`${config.esIndexPrefix}-movements`);
		expect(index.consultations()).toBe(`${config.esIndexPrefix}-consultations`);
		expect(Object.keys(index).sort()).toEqual(Object.keys(MAPPINGS).sort());
	});

	it("refuse fields nobody declared, and have no field for a CPF", () => {
		for (const mapping of Object.values(MAPPINGS)) {
			expect(mapping.dynamic).toBe("strict");
			expect(Object.keys(mapping.properties).join(" ")).not.toMatch(/cpf|nome|endereco/);
		}
	});

	it("map every field of a movement record, money as whole cents", () => {
		const [record] = toRecords([{ cpf: "52998224725", tipo: "pix", valor: 1.5, data: "2025-01-02" }], () => "subject");
		const fields = Object.keys(MAPPINGS.movements.properties);
		for (const field of Object.keys(record)) expect(fields, field).toContain(field);
		expect(MAPPINGS.movements.properties.valor_cents.type).toBe("long");
		expect(MAPPINGS.movements.properties.data).toEqual({ type: "date", format: "strict_date" });
	});
});
