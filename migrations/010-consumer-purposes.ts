import type { Migration } from "./migration";

/**
 * The purposes each API key may consult for (lib/purposes.ts). Keys issued before purposes existed keep
 * working: they may state any purpose of the list as it stood (docs/consultation-purpose.md); a purpose
 * added later must be granted to them explicitly (PATCH /consumers/:id).
 */
export const consumerPurposes: Migration = {
	name: "010-consumer-purposes",
	async up({ context: sql }) {
		await sql(`
			ALTER TABLE consumers ADD COLUMN purposes text[];
			UPDATE consumers SET purposes = ARRAY['concessao_credito', 'revisao_limite', 'cobranca', 'prevencao_fraude', 'contratacao', 'obrigacao_legal', 'consulta_titular'];
			ALTER TABLE consumers ALTER COLUMN purposes SET NOT NULL;
		`);
	},
	async down({ context: sql }) {
		await sql("ALTER TABLE consumers DROP COLUMN IF EXISTS purposes");
	}
};
