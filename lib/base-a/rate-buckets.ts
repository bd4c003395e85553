// API consumers' token buckets in Base A, shared by every gateway replica (docs/rate-limits.md).

/** The bucket refilled for the time since its last use, capped at its size ($2). */
const REFILLED = "LEAST($2::float8, b.tokens + EXTRACT(EPOCH FROM (EXCLUDED.at - b.at)) * $2::float8 / 60)";
/** What a take grants: up to $3 whole tokens of those there. */
const GRANTED = `LEAST($3::float8, FLOOR(${REFILLED}))`;

/**
 * The shared token bucket of one consumer in Base A (table rate_buckets), taken in one statement: $1
 * the consumer, $2 its requests a minute (the bucket's size too), $3 how many tokens the caller asks
 * for (a gateway's lease). `granted` says how many it got (0 when not one is there), `tokens` what is left.
 */
export const TAKE_TOKEN_SQL = `
	INSERT INTO rate_buckets AS b (consumer_id, tokens, at, granted)
	VALUES ($1, $2::float8 - LEAST($3::float8, FLOOR($2::float8)), clock_timestamp(), LEAST($3::float8, FLOOR($2::float8))::int)
	ON CONFLICT (consumer_id) DO UPDATE SET
		tokens = ${REFILLED} - ${GRANTED},
		granted = ${GRANTED}::int,
		at = EXCLUDED.at
	RETURNING granted, tokens`;
