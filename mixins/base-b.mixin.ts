import type { ServiceSchema } from "moleculer";
import MongoAdapter from "moleculer-db-adapter-mongo";
import type { Collection, Db } from "mongodb";
import { config, need } from "../config";
import type { ProfileDoc } from "../lib/base-b/profile";
import { DatabaseMixin, type DatabaseThis } from "./database.mixin";
import type { Mixin, MixinSchema } from "../types/mixin";

/** The collection of payload B documents, keyed by the CPF's blind index (`_id`). */
export const PROFILES = "profiles";

/**
 * Erasure tombstones of Base B (docs/erasure.md): `{_id: <blind index>, erasedAt}`, never the CPF.
 * Written by profiles.erase before it deletes; checked by every write of a profile.
 */
export const ERASURES = "erasures";

/** moleculer-db-adapter-mongo once connected: its types leave out the database, and type no collection. */
export interface ProfilesAdapter extends MongoAdapter {
	db: Db;
	collection: Collection<ProfileDoc>;
}

/** What BaseBMixin adds to `this`: the profiles collection, through `this.adapter.collection`, and the tombstones. */
export interface BaseBThis extends DatabaseThis<ProfilesAdapter> {
	/** The moment the CPF of this blind index was last erased, or null (docs/erasure.md). */
	erasedAt(bidx: string): Promise<Date | null>;
}

/**
 * Base B (MongoDB protocol) through moleculer-db and its Mongo adapter; an adapter of this service's
 * own. Fails fast when the server is away, so the API answers 503 instead of hanging.
 */
export function BaseBMixin(): Mixin {
	return {
		mixins: [DatabaseMixin<ProfilesAdapter>("B", service => service.adapter.db.command({ ping: 1 }))],
		merged(schema: ServiceSchema & { adapter?: MongoAdapter; collection?: string }) {
			schema.adapter = new MongoAdapter(need(config, "mongoUrl"), {
				useUnifiedTopology: true,
				serverSelectionTimeoutMS: 2000,
				connectTimeoutMS: 2000,
				socketTimeoutMS: 30_000,
				poolSize: config.mongoPoolMax
			});
			schema.collection = PROFILES;
		},
		methods: {
			async erasedAt(bidx: string): Promise<Date | null> {
				const tomb = await this.adapter.db.collection<{ _id: string; erasedAt: Date }>(ERASURES).findOne({ _id: bidx });
				return tomb?.erasedAt ?? null;
			}
		}
	} satisfies MixinSchema<BaseBThis> as unknown as Mixin;
}
