import type { Migration } from "./migration";

/**
 * Each debt belongs to the consumer that recorded it (OWASP API1): only that consumer, or a key with
 * `debts:admin`, may settle it. Debts recorded before this migration have no owner: admin only.
 */
export const debtOwner: Migration = {
	name: "003-debt-owner",
	async up({ context: sql }) {
		await sql(`ALTER TABLE debts ADD COLUMN recorded_by text`);
	},
	async down({ context: sql }) {
		await sql(`ALTER TABLE debts DROP COLUMN IF EXISTS recorded_by`);
	}
};
