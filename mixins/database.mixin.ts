import DbService, { type MoleculerDbMethods } from "moleculer-db";
import { BaseUnavailableError, ConflictError, isConnectionError, isDuplicateKeyError } from "../lib/errors";
import type { Mixin, MixinSchema } from "../types/mixin";

/** moleculer-db's service schema, to mix in: its types describe it as a class, which it is not. */
const DbServiceSchema = DbService as unknown as Mixin;

// moleculer-db's generic CRUD actions are switched off: each service publishes only its own actions.
const NO_CRUD = { find: false, count: false, list: false, create: false, insert: false, get: false, update: false, remove: false } as const;

/** What DatabaseMixin adds to `this`: moleculer-db's methods and the adapter of the engine's mixin (Base A's, Base B's). */
export interface DatabaseThis<TAdapter> extends MoleculerDbMethods {
	adapter: TAdapter;
}

/** Turns driver errors into API errors: a missing base is a 503, a duplicate a 409; anything else stays a 500. */
export function mapDriverError(base: string, err: unknown): never {
	if (isConnectionError(err)) throw new BaseUnavailableError(base);
	if (isDuplicateKeyError(err)) throw new ConflictError("The record already exists");
	throw err;
}

/**
 * What every service owning a base through moleculer-db shares (Base A and Base B, whatever the
 * engine; Base C has its own client): moleculer-db without its generic actions, a `health` action
 * for /health/ready answered by the engine's `ping`, and driver errors mapped to API errors.
 */
export function DatabaseMixin<TAdapter>(base: string, ping: (service: DatabaseThis<TAdapter>) => Promise<unknown>): Mixin {
	return {
		mixins: [DbServiceSchema],
		actions: {
			...NO_CRUD,
			health: {
				callers: ["api", "operators"],
				visibility: "public",
				async handler() {
					await ping(this).catch((err: unknown) => mapDriverError(base, err));
					return { base, status: "up" };
				}
			}
		},
		hooks: {
			error: {
				"*"(_ctx: unknown, err: unknown) {
					mapDriverError(base, err);
				}
			}
		}
	} satisfies MixinSchema<DatabaseThis<TAdapter>> as unknown as Mixin;
}
