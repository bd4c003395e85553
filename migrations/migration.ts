/** One step of Base A's schema, run by umzug with a function that runs SQL as the owner role. */
export type RunSql = (sql: string) => Promise<unknown>;
export interface Migration {
	name: string;
	up(params: { context: RunSql }): Promise<void>;
	down(params: { context: RunSql }): Promise<void>;
}
