import { randomUUID } from "node:crypto";
import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { BaseAMixin, type BaseAThis } from "../mixins/base-a.mixin";
import type { MeshLocals, MeshMeta } from "../middlewares/zero-trust.middleware";
import { SECRET_FIELD, defineSubscription, monitorOwner } from "../lib/webhooks/models";
import { EVENT_TYPES, EVENT_TYPE_SCOPES, type EventType } from "../lib/webhooks/events";
import { newSecret } from "../lib/webhooks/signature";
import { refuseTarget } from "../lib/webhooks/ssrf";
import { ConflictError, ForbiddenError, InvalidFieldError, NotFoundError } from "../lib/errors";
import { config } from "../config";
import * as f from "../lib/fields";

/** Subscriptions one consumer may hold. */
export const SUBSCRIPTIONS_MAX = 20;

type Ctx<P> = Context<P, MeshMeta, MeshLocals>;

function subscriptionView(row: Record<string, any>) {
	return { id: row.id, url: row.url, eventTypes: row.event_types, createdAt: new Date(row.created_at).toISOString() };
}

/**
 * Base A: each consumer's monitoring list (CPFs sealed like any personal field, found by blind index)
 * and its webhook subscriptions (the `whsec_` secret shown once, kept sealed). Every query names the
 * caller's consumer id: a consumer sees and changes only its own (docs/webhooks.md).
 */
const MonitoringService: ServiceSchema<ServiceSettingSchema, object, BaseAThis> = {
	name: "monitoring",
	mixins: [BaseAMixin(defineSubscription)],

	actions: {
		addCpf: {
			callers: ["api"], scopes: ["monitoring:write"], audit: true,
			params: { $$strict: true, cpf: f.cpf },
			async handler(ctx: Ctx<{ cpf: string }>) {
				const consumer = ctx.locals.caller!.id;
				const bidx = this.blindIndex(ctx.params.cpf);
				// Already there: idempotent, even at the limit.
				if ((await this.query("SELECT 1 FROM monitors WHERE consumer_id = $1 AND cpf_bidx = $2", [consumer, bidx])).length > 0) return { cpf: ctx.params.cpf };
				const [{ count }] = await this.query<{ count: string }>("SELECT count(*) FROM monitors WHERE consumer_id = $1", [consumer]);
				if (Number(count) >= config.webhooksMonitorsMax) throw new ConflictError(`A consumer may monitor at most ${config.webhooksMonitorsMax} CPFs`, "MONITOR_LIMIT");
				const sealed = this.sealFields("monitors", monitorOwner(consumer, bidx), { cpf: ctx.params.cpf });
				await this.query("INSERT INTO monitors (consumer_id, cpf_bidx, cpf_enc) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING cpf_bidx", [consumer, bidx, sealed.cpf_enc]);
				return { cpf: ctx.params.cpf };
			}
		},

		listCpfs: {
			callers: ["api"], scopes: ["monitoring:read"], audit: true,
			params: { $$strict: true, after: { type: "string", pattern: /^[0-9a-f]{64}$/, optional: true }, limit: { type: "number", integer: true, min: 1, max: 1000, convert: true, optional: true } },
			async handler(ctx: Ctx<{ after?: string; limit?: number }>) {
				const consumer = ctx.locals.caller!.id;
				const limit = ctx.params.limit ?? 100;
				const rows = await this.query<{ cpf_bidx: string; cpf_enc: string; created_at: Date }>(
					"SELECT cpf_bidx, cpf_enc, created_at FROM monitors WHERE consumer_id = $1 AND cpf_bidx > $2 ORDER BY cpf_bidx LIMIT $3",
					[consumer, ctx.params.after ?? "", limit]
				);
				return {
					cpfs: rows.map(r => ({ ...this.openFields("monitors", monitorOwner(consumer, r.cpf_bidx), r, ["cpf"]), since: new Date(r.created_at).toISOString() })),
					next: rows.length === limit ? rows[rows.length - 1].cpf_bidx : null
				};
			}
		},

		removeCpf: {
			callers: ["api"], scopes: ["monitoring:write"], audit: true,
			params: { $$strict: true, cpf: f.cpf },
			async handler(ctx: Ctx<{ cpf: string }>) {
				const removed = await this.query("DELETE FROM monitors WHERE consumer_id = $1 AND cpf_bidx = $2 RETURNING cpf_bidx", [ctx.locals.caller!.id, this.blindIndex(ctx.params.cpf)]);
				if (removed.length === 0) throw new NotFoundError("Monitor");
				return null;
			}
		},

		subscribe: {
			callers: ["api"], scopes: ["monitoring:write"], audit: true,
			params: {
				$$strict: true,
				url: { type: "string", min: 8, max: 2000 },
				eventTypes: { type: "array", min: 1, unique: true, items: { type: "enum", values: [...EVENT_TYPES] } }
			},
			async handler(ctx: Ctx<{ url: string; eventTypes: string[] }>) {
				const consumer = ctx.locals.caller!.id;
				// An event that tells what a scope guards (a score band: score:read) is for keys holding that scope.
				const needs = ctx.params.eventTypes.map(t => EVENT_TYPE_SCOPES[t as EventType]).find(scope => scope && !ctx.locals.caller!.scopes.includes(scope));
				if (needs) throw new ForbiddenError(`Forbidden: subscribing to these events needs the ${needs} scope`, "ERR_MISSING_SCOPE");
				const refused = await refuseTarget(ctx.params.url, { allowPrivate: config.webhooksAllowPrivate, httpsOnly: config.env === "production" });
				if (refused) throw new InvalidFieldError("url", `This URL cannot receive webhooks: ${refused}.`, "forbiddenTarget");
				if ((await this.adapter.model.count({ where: { consumer_id: consumer } })) >= SUBSCRIPTIONS_MAX) {
					throw new ConflictError(`A consumer may hold at most ${SUBSCRIPTIONS_MAX} subscriptions`, "SUBSCRIPTION_LIMIT");
				}
				const id = randomUUID();
				const secret = newSecret();
				const row = await this.adapter.model.create({
					id, consumer_id: consumer, url: ctx.params.url, event_types: ctx.params.eventTypes,
					secret_enc: this.pii.encrypt(secret, `${SECRET_FIELD}.secret:${id}`), created_at: new Date()
				});
				// The secret is shown this once; only its ciphertext is kept.
				return { ...subscriptionView(row.get()), secret };
			}
		},

		subscriptions: {
			callers: ["api"], scopes: ["monitoring:read"],
			params: { $$strict: true },
			async handler(ctx: Ctx<object>) {
				const rows = await this.adapter.model.findAll({ where: { consumer_id: ctx.locals.caller!.id }, order: [["created_at", "ASC"]] });
				return { subscriptions: rows.map(r => subscriptionView(r.get())) };
			}
		},

		unsubscribe: {
			callers: ["api"], scopes: ["monitoring:write"], audit: true,
			params: { $$strict: true, id: f.uuid },
			async handler(ctx: Ctx<{ id: string }>) {
				const removed = await this.adapter.model.destroy({ where: { id: ctx.params.id, consumer_id: ctx.locals.caller!.id } });
				if (removed === 0) throw new NotFoundError("Subscription");
				return null;
			}
		}
	}
};

// Checked above against its own `this`; handed over as Moleculer takes a schema, untyped (types/mixin.ts).
export default MonitoringService as unknown as ServiceSchema;
