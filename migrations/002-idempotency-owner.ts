import type { Migration } from "./migration";

/**
 * The node that holds an idempotency claim still in progress, so that a claim left behind by a node
 * that died (kill -9 between the claim and its answer) can be taken over instead of answering
 * "in progress" until the key expires (found by test/faults.test.ts).
 */
export const idempotencyOwner: Migration = {
	name: "002-idempotency-owner",
	async up({ context: sql }) {
		await sql("ALTER TABLE idempotency_keys ADD COLUMN node_id text");
	},
	async down({ context: sql }) {
		await sql("ALTER TABLE idempotency_keys DROP COLUMN IF EXISTS node_id");
	}
};
