import type { ServiceSchema } from "moleculer";
import DbService from "moleculer-db";
import SqlAdapter from "moleculer-db-adapter-sequelize";
import { Sequelize, type Transaction, UniqueConstraintError } from "sequelize";
import { config, need } from "../config";
import { BaseUnavailableError, ConflictError, isConnectionError } from "../lib/errors";
import type { DefineModel } from "../lib/base-a/models";

// moleculer-db's generic CRUD actions are switched off: each service publishes only its own actions.
const NO_CRUD = { find: false, count: false, list: false, create: false, insert: false, get: false, update: false, remove: false } as const;

/** Turns driver errors into API errors: a missing base is a 503, a duplicate a 409; anything else stays a 500. */
export function mapBaseError(base: string, err: any): never {
	if (isConnectionError(err)) throw new BaseUnavailableError(base);
	if (err instanceof UniqueConstraintError) throw new ConflictError("The record already exists");
	throw err;
}

/**
 * Base A (PostgreSQL) through moleculer-db and its Sequelize adapter. The model is defined on a
 * Sequelize instance of this service's own (never synced: migrations own the schema).
 */
export function BaseAMixin(defineModel: DefineModel): Partial<ServiceSchema> {
	const mixin: Partial<ServiceSchema> & { merged(schema: any): void } = {
		mixins: [DbService as any],
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
		actions: {
			...NO_CRUD,
			health: {
				visibility: "public",
				async handler(this: any) {
					await this.adapter.db.query("SELECT 1").catch((err: unknown) => mapBaseError("A", err));
					return { base: "A", status: "up" };
				}
			}
		},
		hooks: {
			error: {
				"*"(_ctx: unknown, err: unknown) {
					mapBaseError("A", err);
				}
			}
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
