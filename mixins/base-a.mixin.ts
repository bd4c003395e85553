import type { ServiceSchema } from "moleculer";
import SqlAdapter from "moleculer-db-adapter-sequelize";
import { Sequelize, type Transaction } from "sequelize";
import { config, need } from "../config";
import type { DefineModel } from "../lib/base-a/models";
import { BaseMixin } from "./base.mixin";

/**
 * Base A (PostgreSQL) through moleculer-db and its Sequelize adapter. The model is defined on a
 * Sequelize instance of this service's own (never synced: migrations own the schema).
 */
export function BaseAMixin(defineModel: DefineModel): Partial<ServiceSchema> {
	const mixin: Partial<ServiceSchema> & { merged(schema: any): void } = {
		mixins: [BaseMixin("A", service => service.adapter.db.query("SELECT 1"))],
		merged(schema: any) {
			const sequelize = new Sequelize(need(config, "postgresUrl"), {
				logging: false,
				pool: { max: 10, min: 0, acquire: 4000, idle: 10_000 },
				dialectOptions: { connectionTimeoutMillis: 2000, statement_timeout: 10_000 },
				retry: { max: 0 }
			});
			schema.adapter = new SqlAdapter(sequelize);
			schema.model = defineModel(sequelize);
		},
		methods: {
			/** Runs work in one transaction; used so that a write and its audit row succeed together. */
			inTransaction<T>(this: any, work: (t: Transaction) => Promise<T>): Promise<T> {
				return this.adapter.db.transaction(work);
			},
			/** A raw parameterised query ($1…) on this service's connection pool. */
			query(this: any, sql: string, bind: unknown[] = [], transaction?: Transaction): Promise<any[]> {
				return this.adapter.db.query(sql, { bind, type: "SELECT", transaction });
			}
		}
	};
	return mixin;
}
