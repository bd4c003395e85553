import type { Migration } from "./migration";

/**
 * The audit log names each act by the action that did it (`cpf-lookup.get`, not `persons.read`). Rows
 * are hash-chained and insert-only, so rows written under the older names stay as they are; readers
 * show them under the current name through this table.
 */
export const auditActionNames: Migration = {
	name: "005-audit-action-names",
	async up({ context: sql }) {
		await sql(`
			CREATE TABLE audit_action_names (
				recorded text PRIMARY KEY,
				action   text NOT NULL
			);
			INSERT INTO audit_action_names (recorded, action) VALUES
				('persons.read', 'cpf-lookup.get'),
				('debts.create', 'debt-write.create'),
				('debts.settle', 'debt-write.settle'),
				('score.read', 'asset-score.get'),
				('profiles.read', 'profiles.get'),
				('profiles.write', 'profiles.put'),
				('ml.export', 'ml-export.features');
			GRANT SELECT ON audit_action_names TO credit_app;
		`);
	},
	async down({ context: sql }) {
		await sql("DROP TABLE IF EXISTS audit_action_names");
	}
};
