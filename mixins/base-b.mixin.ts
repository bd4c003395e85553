import type { ServiceSchema } from "moleculer";
import MongoAdapter from "moleculer-db-adapter-mongo";
import { config, need } from "../config";
import { DatabaseMixin } from "./database.mixin";

/** The collection of payload B documents, keyed by the CPF's blind index (`_id`). */
export const PROFILES = "profiles";

/**
 * Base B (MongoDB protocol) through moleculer-db and its Mongo adapter; an adapter of this service's
 * own. Fails fast when the server is away, so the API answers 503 instead of hanging.
 */
export function BaseBMixin(): Partial<ServiceSchema> {
	const mixin: Partial<ServiceSchema> & { merged(schema: any): void } = {
		mixins: [DatabaseMixin("B", service => service.adapter.db.command({ ping: 1 }))],
		merged(schema: any) {
			schema.adapter = new MongoAdapter(need(config, "mongoUrl"), {
				useUnifiedTopology: true,
				serverSelectionTimeoutMS: 2000,
				connectTimeoutMS: 2000,
				socketTimeoutMS: 30_000,
				poolSize: config.mongoPoolMax
			});
			schema.collection = PROFILES;
		}
	};
	return mixin;
}
