import type { ServiceSchema } from "moleculer";
import DbService from "moleculer-db";
import { BaseUnavailableError, ConflictError, isConnectionError, isDuplicateKeyError } from "../lib/errors";

// moleculer-db's generic CRUD actions are switched off: each service publishes only its own actions.
const NO_CRUD = { find: false, count: false, list: false, create: false, insert: false, get: false, update: false, remove: false } as const;

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
export function DatabaseMixin(base: string, ping: (service: any) => Promise<unknown>): Partial<ServiceSchema> {
	return {
		mixins: [DbService as any],
		actions: {
			...NO_CRUD,
			health: {
				callers: ["api", "operators"],
				visibility: "public",
				async handler(this: any) {
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
	};
}
