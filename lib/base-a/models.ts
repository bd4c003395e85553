import { DataTypes, type ModelStatic, type Model, type Sequelize } from "sequelize";

// Models only map the tables that migrations/ creates; nothing here syncs a schema.
const common = { underscored: true, timestamps: true, createdAt: "created_at", updatedAt: "updated_at" } as const;

/** A row as Sequelize hands it over: a model instance, read with `get()` (raw queries give plain objects). */
export type ModelRow = Model<Record<string, any>>;
export type DefineModel = (sequelize: Sequelize) => ModelStatic<ModelRow>;

export const definePerson: DefineModel = sequelize =>
	sequelize.define("person", {
		id: { type: DataTypes.UUID, primaryKey: true, defaultValue: DataTypes.UUIDV4 },
		cpf_bidx: { type: DataTypes.CHAR(64), allowNull: false, unique: true },
		cpf_enc: { type: DataTypes.TEXT, allowNull: false },
		nome_enc: { type: DataTypes.TEXT, allowNull: false },
		endereco_enc: { type: DataTypes.TEXT, allowNull: false }
	}, { ...common, tableName: "persons" });

export const defineDebt: DefineModel = sequelize =>
	sequelize.define("debt", {
		id: { type: DataTypes.UUID, primaryKey: true, defaultValue: DataTypes.UUIDV4 },
		person_id: { type: DataTypes.UUID, allowNull: false },
		valor_cents: { type: DataTypes.BIGINT, allowNull: false },
		empresa: { type: DataTypes.TEXT, allowNull: false },
		data_vencimento: { type: DataTypes.DATEONLY, allowNull: false },
		data_pagamento: { type: DataTypes.DATEONLY, allowNull: true },
		/** the consumer (caller id) that recorded it: the one that may settle it */
		recorded_by: { type: DataTypes.TEXT, allowNull: true }
	}, { ...common, tableName: "debts" });

export const defineConsumer: DefineModel = sequelize =>
	sequelize.define("consumer", {
		id: { type: DataTypes.UUID, primaryKey: true, defaultValue: DataTypes.UUIDV4 },
		name: { type: DataTypes.TEXT, allowNull: false },
		key_hash: { type: DataTypes.CHAR(64), allowNull: false, unique: true },
		scopes: { type: DataTypes.ARRAY(DataTypes.TEXT), allowNull: false },
		rate_limit: { type: DataTypes.INTEGER, allowNull: false },
		/** the purposes (lib/purposes.ts) this key may consult for */
		purposes: { type: DataTypes.ARRAY(DataTypes.TEXT), allowNull: false },
		revoked_at: { type: DataTypes.DATE, allowNull: true }
	}, { ...common, updatedAt: false, tableName: "consumers" });

export const defineAuditRow: DefineModel = sequelize =>
	sequelize.define("audit_row", {
		seq: { type: DataTypes.BIGINT, primaryKey: true },
		at: { type: DataTypes.DATE },
		consumer: { type: DataTypes.TEXT, allowNull: false },
		action: { type: DataTypes.TEXT, allowNull: false },
		cpf_bidx: { type: DataTypes.CHAR(64), allowNull: true },
		request_id: { type: DataTypes.TEXT, allowNull: true },
		outcome: { type: DataTypes.TEXT, allowNull: false },
		prev_hash: { type: DataTypes.CHAR(64) },
		hash: { type: DataTypes.CHAR(64) }
	}, { tableName: "audit_log", timestamps: false });

export const defineIdempotencyKey: DefineModel = sequelize =>
	sequelize.define("idempotency_key", {
		consumer_id: { type: DataTypes.TEXT, primaryKey: true },
		key: { type: DataTypes.TEXT, primaryKey: true },
		action: { type: DataTypes.TEXT, allowNull: false },
		fingerprint: { type: DataTypes.CHAR(64), allowNull: false },
		status: { type: DataTypes.SMALLINT, allowNull: true },
		response_enc: { type: DataTypes.TEXT, allowNull: true }
	}, { ...common, updatedAt: false, tableName: "idempotency_keys" });
