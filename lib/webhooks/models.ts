import { DataTypes } from "sequelize";
import type { DefineModel } from "../base-a/models";

// Models of migrations/030-webhooks.ts (never synced); raw SQL does most of the work.

/** The owner part of a monitored CPF's AAD: the consumer that put it there and its blind index. */
export const monitorOwner = (consumer: string, bidx: string) => `${consumer}/${bidx}`;
/** The table part of a subscription secret's AAD (`webhook_subscriptions.secret:<id>`). */
export const SECRET_FIELD = "webhook_subscriptions";

export const defineOutboxEvent: DefineModel = sequelize =>
	sequelize.define("event_outbox", {
		id: { type: DataTypes.UUID, primaryKey: true },
		seq: { type: DataTypes.BIGINT },
		type: { type: DataTypes.TEXT, allowNull: false },
		cpf_bidx: { type: DataTypes.CHAR(64), allowNull: false },
		data: { type: DataTypes.JSONB, allowNull: false },
		at: { type: DataTypes.DATE },
		sent_at: { type: DataTypes.DATE, allowNull: true }
	}, { tableName: "event_outbox", timestamps: false });

export const defineSubscription: DefineModel = sequelize =>
	sequelize.define("webhook_subscription", {
		id: { type: DataTypes.UUID, primaryKey: true },
		consumer_id: { type: DataTypes.TEXT, allowNull: false },
		url: { type: DataTypes.TEXT, allowNull: false },
		event_types: { type: DataTypes.ARRAY(DataTypes.TEXT), allowNull: false },
		secret_enc: { type: DataTypes.TEXT, allowNull: false },
		created_at: { type: DataTypes.DATE }
	}, { tableName: "webhook_subscriptions", timestamps: false });

export const defineDelivery: DefineModel = sequelize =>
	sequelize.define("webhook_delivery", {
		id: { type: DataTypes.UUID, primaryKey: true },
		subscription_id: { type: DataTypes.UUID, allowNull: false },
		consumer_id: { type: DataTypes.TEXT, allowNull: false },
		event_id: { type: DataTypes.UUID, allowNull: false },
		status: { type: DataTypes.TEXT, allowNull: false }
	}, { tableName: "webhook_deliveries", timestamps: false });
