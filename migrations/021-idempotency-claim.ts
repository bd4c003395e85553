import type { Migration } from "./migration";

/**
 * Each Idempotency-Key claim gets a token of its own (issue 17 item 1). A Base A write stores its answer
 * in its own transaction only under the token it claimed with, else it rolls back: a claim taken over
 * (its node thought gone) can never see its first write commit as well.
 */
export const idempotencyClaim: Migration = {
	name: "021-idempotency-claim",
	async up({ context: sql }) {
		await sql("ALTER TABLE idempotency_keys ADD COLUMN claim uuid");
	},
	async down({ context: sql }) {
		await sql("ALTER TABLE idempotency_keys DROP COLUMN IF EXISTS claim");
	}
};
