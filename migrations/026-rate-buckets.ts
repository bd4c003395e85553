import type { Migration } from "./migration";

/**
 * The API consumers' rate limits, shared by every gateway replica (docs/rate-limits.md): one token
 * bucket per consumer. UNLOGGED: no WAL per request, and a crash only refills the buckets.
 */
export const rateBuckets: Migration = {
	name: "026-rate-buckets",
	async up({ context: sql }) {
		await sql(`
			CREATE UNLOGGED TABLE rate_buckets (
				consumer_id text PRIMARY KEY,
				tokens double precision NOT NULL,
				at timestamptz NOT NULL,
				allowed boolean NOT NULL
			);
			GRANT SELECT, INSERT, UPDATE ON rate_buckets TO credit_app;
		`);
	},
	async down({ context: sql }) {
		await sql("DROP TABLE IF EXISTS rate_buckets");
	}
};
