import { Client } from "pg";
import { config, need } from "../../config";

/** Direct access to Base A as the schema owner: what someone with a database dump would see. */
export async function ownerQuery<T = any>(sql: string, params: unknown[] = []): Promise<T[]> {
	const client = new Client({ connectionString: need(config, "postgresOwnerUrl") });
	await client.connect();
	try {
		return (await client.query(sql, params)).rows;
	} finally {
		await client.end();
	}
}

/** The same, as the application's role (to show what it may not do). */
export async function appQuery<T = any>(sql: string, params: unknown[] = []): Promise<T[]> {
	const client = new Client({ connectionString: need(config, "postgresUrl") });
	await client.connect();
	try {
		return (await client.query(sql, params)).rows;
	} finally {
		await client.end();
	}
}

/** A digest of the data tables, to show a rejected request changed nothing. */
export async function snapshot(): Promise<string> {
	const [row] = await ownerQuery(`
		SELECT md5(
			coalesce((SELECT string_agg(p::text, '|' ORDER BY id) FROM persons p), '') ||
			coalesce((SELECT string_agg(d::text, '|' ORDER BY id) FROM debts d), '') ||
			coalesce((SELECT string_agg(c::text, '|' ORDER BY id) FROM consumers c), '')) AS digest`);
	return row.digest;
}
