import { createHash, randomBytes, randomUUID } from "node:crypto";
import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { BaseAMixin, type BaseAThis } from "../mixins/base-a.mixin";
import { defineConsumer } from "../lib/base-a/models";
import { NotFoundError } from "../lib/errors";
import { BOOTSTRAP_ADMIN_ID, SCOPES } from "../lib/scopes";
import { config } from "../config";
import { TAKE_TOKEN_SQL } from "../lib/base-a/rate-buckets";
import { secondsUntilToken } from "../lib/gateway/rate-limit";
import { PURPOSE_CODES } from "../lib/purposes";
import { consumerToken, type MeshLocals, type MeshMeta } from "../middlewares/zero-trust.middleware";

/** Keys are 256 random bits, so a plain SHA-256 is enough to store them: nothing to brute-force. */
export function hashApiKey(key: string): string {
	return createHash("sha256").update(key).digest("hex");
}

function consumerView(row: Record<string, any>) {
	return { id: row.id, name: row.name, scopes: row.scopes, purposes: row.purposes, rateLimit: row.rate_limit, createdAt: new Date(row.created_at).toISOString() };
}

/** The purposes a key may consult for: some of the documented list (lib/purposes.ts). */
const purposesParam = { type: "array", min: 1, unique: true, items: { type: "enum", values: PURPOSE_CODES } } as const;

/** Base A: API clients, their hashed keys, scopes and rate limits. */
const ConsumersService: ServiceSchema<ServiceSettingSchema, object, BaseAThis> = {
	name: "consumers",
	mixins: [BaseAMixin(defineConsumer)],

	actions: {
		/**
		 * Called by the gateway for each key it has not cached: the consumer and a caller token signed by
		 * this group (the gateway cannot make one), or null.
		 */
		/**
		 * Takes up to `count` requests (a gateway's lease, lib/gateway/token-leases.ts) from the calling
		 * consumer's token bucket, shared by every gateway replica (docs/rate-limits.md): how many it
		 * granted, and when none, the seconds to wait. The consumer and its rate come from the verified
		 * caller token, never params.
		 */
		take: {
			callers: ["api"], scopes: [],
			visibility: "public",
			params: { $$strict: true, count: { type: "number", integer: true, min: 1, max: 100, default: 1 } },
			async handler(ctx: Context<{ count: number }, MeshMeta, MeshLocals>) {
				const { id, rateLimit } = ctx.locals.caller!;
				const perMinute = rateLimit ?? config.rateLimitPerMinute;
				const [row] = await this.query<{ granted: number; tokens: number }>(TAKE_TOKEN_SQL, [id, perMinute, ctx.params.count]);
				return { granted: row.granted, wait: row.granted > 0 ? 0 : secondsUntilToken(row.tokens, perMinute) };
			}
		},

		authenticate: {
			callers: ["api"],
			visibility: "public",
			params: { key: { type: "string", min: 1, max: 256 } },
			async handler(ctx: Context<{ key: string }, MeshMeta, MeshLocals>) {
				const row = await this.adapter.model.findOne({ where: { key_hash: hashApiKey(ctx.params.key), revoked_at: null } });
				if (!row) return null;
				const consumer = consumerView(row.get());
				return { ...consumer, token: consumerToken(consumer, ctx.requestID) };
			}
		},

		create: {
			callers: ["api", "operators"], scopes: ["consumers:admin"], audit: true,
			params: {
				$$strict: true,
				name: { type: "string", trim: true, min: 1, max: 80, pattern: /^[\p{L}\p{N} ._-]+$/u },
				scopes: { type: "array", min: 1, unique: true, items: { type: "enum", values: [...SCOPES] } },
				rateLimit: { type: "number", integer: true, min: 1, max: 1_000_000, optional: true },
				purposes: { ...purposesParam, optional: true }
			},
			async handler(ctx: Context<{ name: string; scopes: string[]; rateLimit?: number; purposes?: string[] }, MeshMeta, MeshLocals>) {
				const key = `cm_${randomBytes(32).toString("base64url")}`;
				const row = await this.adapter.model.create({
					id: randomUUID(), name: ctx.params.name, key_hash: hashApiKey(key),
					scopes: ctx.params.scopes, rate_limit: ctx.params.rateLimit ?? config.rateLimitPerMinute,
					// Not given: every purpose of the list (docs/consultation-purpose.md).
					purposes: ctx.params.purposes ?? PURPOSE_CODES
				});
				const consumer = consumerView(row.get());
				// The key is shown this once; only its hash is kept.
				return { ...consumer, key };
			}
		},

		/** Limits (or widens) the purposes a key may consult for; takes effect on every gateway at once. */
		update: {
			callers: ["api", "operators"], scopes: ["consumers:admin"], audit: true,
			params: { $$strict: true, id: { type: "uuid" }, purposes: purposesParam },
			async handler(ctx: Context<{ id: string; purposes: string[] }, MeshMeta, MeshLocals>) {
				const [count, rows] = await this.adapter.model.update({ purposes: ctx.params.purposes }, { where: { id: ctx.params.id, revoked_at: null }, returning: true });
				if (count === 0) throw new NotFoundError("Consumer");
				// Gateways cache keys with their caller tokens: the old purposes must not outlive the change.
				this.broker.broadcast("consumers.changed", { id: ctx.params.id });
				return consumerView(rows[0].get());
			}
		},

		/**
		 * Names of consumers by id, in one query (revoked keys too: a consultation outlives its key), for
		 * the list of who consulted a CPF. Ids not found are absent from the answer.
		 */
		names: {
			callers: ["privacy"], scopes: ["consultations:read", "privacy:admin"],
			visibility: "public",
			params: { $$strict: true, ids: { type: "array", max: 1000, items: { type: "uuid" } } },
			async handler(ctx: Context<{ ids: string[] }, MeshMeta, MeshLocals>) {
				if (ctx.params.ids.length === 0) return {};
				const rows: { id: string; name: string }[] = await this.query("SELECT id, name FROM consumers WHERE id = ANY($1::uuid[])", [[...new Set(ctx.params.ids)]]);
				return Object.fromEntries(rows.map(r => [r.id, r.name]));
			}
		},

		revoke: {
			callers: ["api", "operators"], scopes: ["consumers:admin"], audit: true,
			params: { $$strict: true, id: { type: "uuid" } },
			async handler(ctx: Context<{ id: string }, MeshMeta, MeshLocals>) {
				const [count] = await this.adapter.model.update({ revoked_at: new Date() }, { where: { id: ctx.params.id, revoked_at: null } });
				// Revoking is idempotent (a retried DELETE succeeds); only an id never issued is 404.
				if (count === 0 && (await this.adapter.model.count({ where: { id: ctx.params.id } })) === 0) throw new NotFoundError("Consumer");
				this.broker.broadcast("consumers.revoked", { id: ctx.params.id });
				return null;
			}
		},

		/** Every consumer, revoked ones too, oldest first: for operators (the REPL's keys:list), not on HTTP. */
		list: {
			callers: ["operators"], scopes: ["consumers:admin"], audit: true,
			visibility: "public",
			params: { $$strict: true },
			async handler() {
				const rows = await this.adapter.model.findAll({ order: [["created_at", "ASC"]] });
				return rows.map(r => {
					const row = r.get();
					return { ...consumerView(row), revokedAt: row.revoked_at ? new Date(row.revoked_at).toISOString() : null };
				});
			}
		}
	},

	async started() {
		if (!config.adminApiKey) return;
		// Created only when absent: a start never brings back a revoked admin key, nor replaces one
		// (rotation: issue a new consumers:admin key, then revoke the bootstrap one; docs/deploy.md).
		const [created] = await this.query(
			`INSERT INTO consumers (id, name, key_hash, scopes, rate_limit, purposes) VALUES ($1, 'bootstrap-admin', $2, $3, 100000, $4)
			 ON CONFLICT (id) DO NOTHING RETURNING id`,
			[BOOTSTRAP_ADMIN_ID, hashApiKey(config.adminApiKey), [...SCOPES], [...PURPOSE_CODES]]
		);
		this.logger.info(created ? "Bootstrap admin key created (from ADMIN_API_KEY)." : "Bootstrap admin key exists already; ADMIN_API_KEY is not applied again.");
	}
};

// Checked above against its own `this`; handed over as Moleculer takes a schema, untyped (types/mixin.ts).
export default ConsumersService as unknown as ServiceSchema;
