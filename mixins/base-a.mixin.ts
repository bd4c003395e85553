import type { Context, ServiceSchema } from "moleculer";
import SqlAdapter from "moleculer-db-adapter-sequelize";
import { Sequelize, type Transaction } from "sequelize";
import { config, need } from "../config";
import type { DefineModel } from "../lib/base-a/models";
import { DatabaseMixin } from "./database.mixin";
import { PiiMixin } from "./pii.mixin";
import { sealAnswer, STORE_ANSWER_SQL } from "../lib/base-a/idempotency-answer";
import type { MeshLocals } from "../middlewares/zero-trust.middleware";
import { appendAudit } from "../middlewares/audit.middleware";
import { httpAnswer } from "../middlewares/http-status.middleware";

/**
 * Base A (PostgreSQL) through moleculer-db and its Sequelize adapter. The model is defined on a
 * Sequelize instance of this service's own (never synced: migrations own the schema).
 */
export function BaseAMixin(defineModel: DefineModel): Partial<ServiceSchema> {
	const mixin: Partial<ServiceSchema> & { merged(schema: any): void } = {
		// Base A is the encrypted base: every service of it seals and opens fields.
		mixins: [DatabaseMixin("A", service => service.adapter.db.query("SELECT 1")), PiiMixin],
		merged(schema: any) {
			const sequelize = new Sequelize(need(config, "postgresUrl"), {
				logging: false,
				pool: { max: config.postgresPoolMax, min: 0, acquire: 4000, idle: 10_000 },
				dialectOptions: { connectionTimeoutMillis: 2000, statement_timeout: 10_000 },
				retry: { max: 0 }
			});
			schema.adapter = new SqlAdapter(sequelize);
			schema.model = defineModel(sequelize);
		},
		methods: {
			/**
			 * Runs work in one transaction, so that a write and its audit row succeed together. Given the
			 * call's context, a write sent with an Idempotency-Key also stores its answer in that same
			 * transaction: a node dying right after the commit leaves the answer for the client's retry,
			 * never a claim without one that a retry would take over and write again.
			 */
			inTransaction<T>(this: any, work: (t: Transaction) => Promise<T>, ctx?: Context<unknown, any, MeshLocals & { created?: boolean; audited?: boolean }>): Promise<T> {
				return this.adapter.db.transaction(async (t: Transaction) => {
					const result = await work(t);
					if (!ctx) return result;
					// The audit row of a declared action goes in before the commit: no write without its row.
					await appendAudit(ctx, "ok");
					const claim = ctx.meta?.idempotency;
					const consumer = ctx.locals?.caller?.id;
					if (claim && consumer && claim.action === ctx.action?.name) {
						const answer = { ...httpAnswer(claim.action, result, ctx.params, ctx.locals), response: result };
						await this.query(STORE_ANSWER_SQL, [consumer, claim.key, answer.status, sealAnswer(this.pii, consumer, claim.key, answer)], t);
					}
					return result;
				});
			},
			/** A raw parameterised query ($1…) on this service's connection pool. */
			query(this: any, sql: string, bind: unknown[] = [], transaction?: Transaction): Promise<any[]> {
				return this.adapter.db.query(sql, { bind, type: "SELECT", transaction });
			}
		}
	};
	return mixin;
}
