import type { Migration } from "./migration";

/**
 * Erasure tombstones of Base A (docs/erasure.md): the blind index of an erased CPF and the moment of
 * its erasure, never the CPF. Every writer of Base A checks it in its own transaction and refuses a
 * write begun before that moment; a write begun after it is a new record. Insert and update only:
 * the application's role cannot remove a tombstone.
 */
export const erasures: Migration = {
	name: "025-erasures",
	async up({ context: sql }) {
		await sql(`
			CREATE TABLE erasures (
				cpf_bidx char(64) PRIMARY KEY,
				erased_at timestamptz NOT NULL
			);
			GRANT SELECT, INSERT, UPDATE ON erasures TO credit_app;
		`);
	},
	async down({ context: sql }) {
		await sql("DROP TABLE IF EXISTS erasures");
	}
};
