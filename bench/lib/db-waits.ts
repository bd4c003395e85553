// Where a database's client sessions are while a side runs: pg_stat_activity, sampled.
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";

export interface WaitProfile {
	samples: number;
	/** Average number of client sessions of the database in each state: "CPU" (active, not waiting), "Lock:advisory", "IO:WALSync", "idle"… */
	sessions: Record<string, number>;
}

/**
 * Samples pg_stat_activity every `everyMs` on a connection of its own (same role as the sessions
 * watched, so their wait events are visible); stop() returns the averages.
 */
export async function waitSampler(connectionString: string, everyMs = 100): Promise<() => Promise<WaitProfile>> {
	const client = new pg.Client({ connectionString, statement_timeout: 2000 });
	await client.connect();
	const totals: Record<string, number> = {};
	let samples = 0;
	let stopped = false;
	const loop = (async () => {
		while (!stopped) {
			const { rows } = await client.query(
				`SELECT CASE WHEN state <> 'active' THEN coalesce(state, 'unknown')
				             WHEN wait_event_type IS NULL THEN 'CPU'
				             ELSE wait_event_type || ':' || wait_event END AS what, count(*)::int AS n
				   FROM pg_stat_activity
				  WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()
				  GROUP BY 1`);
			samples++;
			for (const r of rows) totals[r.what] = (totals[r.what] ?? 0) + r.n;
			await sleep(everyMs);
		}
	})();
	return async () => {
		stopped = true;
		await loop.catch(() => undefined);
		await client.end().catch(() => undefined);
		const sessions = Object.fromEntries(Object.entries(totals).map(([k, v]) => [k, Math.round((v / Math.max(1, samples)) * 10) / 10] as const).sort((a, b) => b[1] - a[1]));
		return { samples, sessions };
	};
}
