// API consumers' token buckets in Base A, shared by every gateway replica (docs/rate-limits.md).

/** The bucket refilled for the time since its last use, capped at its size ($2). */
const REFILLED = "LEAST($2::float8, b.tokens + EXTRACT(EPOCH FROM (EXCLUDED.at - b.at)) * $2::float8 / 60)";

/**
 * The shared token bucket of one consumer in Base A (table rate_buckets), taken in one statement: $1
 * the consumer, $2 its requests a minute (the bucket's size too). A token is taken when one is there;
 * `allowed` says whether it was, `tokens` what is left.
 */
export const TAKE_TOKEN_SQL = `
	INSERT INTO rate_buckets AS b (consumer_id, tokens, at, allowed) VALUES ($1, $2::float8 - 1, clock_timestamp(), true)
	ON CONFLICT (consumer_id) DO UPDATE SET
		tokens = CASE WHEN ${REFILLED} >= 1 THEN ${REFILLED} - 1 ELSE ${REFILLED} END,
		allowed = ${REFILLED} >= 1,
		at = EXCLUDED.at
	RETURNING allowed, tokens`;
