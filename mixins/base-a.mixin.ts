import type { Context, ServiceSchema } from "moleculer";
import SqlAdapter from "moleculer-db-adapter-sequelize";
import { type ModelStatic, QueryTypes, Sequelize, type Transaction } from "sequelize";
import { config, need } from "../config";
import type { DefineModel, ModelRow } from "../lib/base-a/models";
import { DatabaseMixin, type DatabaseThis } from "./database.mixin";
import { PiiMixin, type PiiThis } from "./pii.mixin";
import { sealAnswer, STORE_ANSWER_SQL } from "../lib/base-a/idempotency-answer";
import type { MeshLocals, MeshMeta } from "../middlewares/zero-trust.middleware";
import { appendAudit, type AuditedParams } from "../middlewares/audit.middleware";
import { httpAnswer } from "../middlewares/http-status.middleware";
import { ConflictError } from "../lib/errors";
import { followPrimary, parsePostgresUrl } from "../lib/base-a/primary";
import type { Mixin, MixinSchema } from "../types/mixin";

/** moleculer-db-adapter-sequelize once connected: its types leave out the Sequelize instance and the model. */
export interface SequelizeAdapter extends SqlAdapter {
	db: Sequelize;
	model: ModelStatic<ModelRow>;
}

/** What BaseAMixin adds to `this`: the model and connection pool (through `this.adapter`), field encryption, and these. */
export interface BaseAThis extends DatabaseThis<SequelizeAdapter>, PiiThis {
	inTransaction<T>(work: (t: Transaction) => Promise<T>, ctx?: Context<AuditedParams, MeshMeta, MeshLocals>): Promise<T>;
	/** The rows of a SELECT, each as the query names its columns (`T`). */
	query<T extends object = Record<string, unknown>>(sql: string, bind?: unknown[], transaction?: Transaction): Promise<T[]>;
	/**
	 * A write's guard against erasure (docs/erasure.md): waits for an erasure of this CPF in progress,
	 * then refuses (409 ERASED_MEANWHILE) a write whose transaction began before the CPF's erasure.
	 */
	refuseIfErased(bidx: string, transaction: Transaction): Promise<void>;
	/** The erasure's side: holds every write of the CPF off and records the moment of its erasure. */
	recordErasure(bidx: string, transaction: Transaction): Promise<void>;
}

/** The advisory lock of one CPF's writes (shared) against its erasure (exclusive), until the transaction ends. */
const CPF_LOCK = "hashtextextended('credit-mesh-cpf:' || $1, 0)";

/**
 * Base A (PostgreSQL) through moleculer-db and its Sequelize adapter. The model is defined on a
 * Sequelize instance of this service's own (never synced: migrations own the schema).
 */
export function BaseAMixin(defineModel: DefineModel): Mixin {
	return {
		// Base A is the encrypted base: every service of it seals and opens fields.
		mixins: [DatabaseMixin<SequelizeAdapter>("A", service => service.adapter.db.query("SELECT 1")), PiiMixin],
		merged(schema: ServiceSchema & { adapter?: SqlAdapter; model?: ModelStatic<ModelRow> }) {
			// A pair's URL (several hosts, target_session_attrs=read-write): each new connection goes to its primary.
			const target = parsePostgresUrl(need(config, "postgresUrl"));
			const sequelize = new Sequelize(target.url, {
				...followPrimary(target),
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
			inTransaction<T>(work: (t: Transaction) => Promise<T>, ctx?: Context<AuditedParams, MeshMeta, MeshLocals>): Promise<T> {
				return this.adapter.db.transaction(async (t: Transaction) => {
					const result = await work(t);
					if (!ctx) return result;
					// The audit row of a declared action goes in before the commit: no write without its row.
					await appendAudit(ctx, "ok");
					const idempotency = ctx.meta?.idempotency;
					const consumer = ctx.locals?.caller?.id;
					const claim = ctx.locals?.idempotencyClaim;
					if (idempotency && consumer && claim && idempotency.action === ctx.action?.name) {
						const answer = { ...httpAnswer(idempotency.action, result, ctx.params, ctx.locals), response: result };
						const stored = await this.query(STORE_ANSWER_SQL, [consumer, idempotency.key, answer.status, sealAnswer(this.pii, consumer, idempotency.key, answer), claim], t);
						// The claim was taken over (its node was thought gone): the retry that took it writes; this one rolls back.
						if (stored.length === 0) throw new ConflictError("A request with this Idempotency-Key is still in progress", "IDEMPOTENCY_IN_PROGRESS");
					}
					return result;
				});
			},
			async refuseIfErased(bidx: string, transaction: Transaction): Promise<void> {
				await this.query(`SELECT pg_advisory_xact_lock_shared(${CPF_LOCK})`, [bidx], transaction);
				// A statement of its own: its snapshot is taken once the lock is held, so it sees the erasure it waited for.
				const [erased] = await this.query<{ erased: boolean }>("SELECT true AS erased FROM erasures WHERE cpf_bidx = $1 AND erased_at >= now()", [bidx], transaction);
				if (erased) throw new ConflictError("This CPF was erased while the request was in flight; send it again to record it as new", "ERASED_MEANWHILE");
			},
			async recordErasure(bidx: string, transaction: Transaction): Promise<void> {
				await this.query(`SELECT pg_advisory_xact_lock(${CPF_LOCK})`, [bidx], transaction);
				// clock_timestamp(): after the lock, so every write that waited for it began before this moment.
				await this.query(`INSERT INTO erasures (cpf_bidx, erased_at) VALUES ($1, clock_timestamp())
					ON CONFLICT (cpf_bidx) DO UPDATE SET erased_at = EXCLUDED.erased_at RETURNING cpf_bidx`, [bidx], transaction);
			},
			/** A raw parameterised query ($1…) on this service's connection pool. */
			query<T extends object>(sql: string, bind: unknown[] = [], transaction?: Transaction): Promise<T[]> {
				return this.adapter.db.query<T>(sql, { bind, type: QueryTypes.SELECT, transaction });
			}
		}
	} satisfies MixinSchema<BaseAThis> as unknown as Mixin;
}
