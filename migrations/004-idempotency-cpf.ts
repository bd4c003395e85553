import type { Migration } from "./migration";

/**
 * A stored Idempotency answer may hold a person's data: it is filed under the CPF's blind index, so
 * that erasing the person erases it too, and dated, so that expired ones are swept.
 */
export const idempotencyCpf: Migration = {
	name: "004-idempotency-cpf",
	async up({ context: sql }) {
		await sql(`
			ALTER TABLE idempotency_keys ADD COLUMN cpf_bidx char(64);
			CREATE INDEX idempotency_keys_cpf_idx ON idempotency_keys (cpf_bidx) WHERE cpf_bidx IS NOT NULL;
			CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
		`);
	},
	async down({ context: sql }) {
		await sql("DROP INDEX IF EXISTS idempotency_keys_created_idx; DROP INDEX IF EXISTS idempotency_keys_cpf_idx; ALTER TABLE idempotency_keys DROP COLUMN IF EXISTS cpf_bidx");
	}
};
