import type { Migration } from "./migration";

/**
 * A take from a rate bucket may grant several tokens at once (the gateways' leases: docs/rate-limits.md):
 * the row says how many the last take granted, which also says whether it allowed the request (the
 * `allowed` column it replaces).
 */
export const rateBucketLeases: Migration = {
	name: "031-rate-bucket-leases",
	async up({ context: sql }) {
		await sql("ALTER TABLE rate_buckets ADD COLUMN granted integer NOT NULL DEFAULT 0; ALTER TABLE rate_buckets DROP COLUMN allowed");
	},
	async down({ context: sql }) {
		await sql("ALTER TABLE rate_buckets ADD COLUMN allowed boolean NOT NULL DEFAULT true; ALTER TABLE rate_buckets DROP COLUMN IF EXISTS granted");
	}
};
