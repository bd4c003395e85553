import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import type { MeshLocals, MeshMeta } from "../middlewares/zero-trust.middleware";
import { activityPseudonym } from "../lib/base-c/subject";
import { MOVEMENTS_QUERY } from "../lib/base-c/movement";
import * as f from "../lib/fields";

interface ActivityFrontThis {
	/** A person's key in Base C (lib/base-c/subject.ts). */
	activitySubject: (cpf: string) => string;
}

type MovementsQuery = { from?: string; to?: string; tipo?: string; size: number; after?: string };

/**
 * Base C's reads by CPF as the API serves them (group base-c-front: PSEUDONYM_KEY, no Elasticsearch
 * credential): turns the CPF into its pseudonym, asks base-c's `activity` by that pseudonym alone, and
 * puts the CPF back in the answer. One more hop than a gateway calling `activity` directly, the price of
 * keeping the key out of the process that holds Elasticsearch's credential (docs/base-c.md).
 */
const ActivityFrontService: ServiceSchema<ServiceSettingSchema, object, ActivityFrontThis> = {
	name: "activity-front",

	actions: {
		/** Payload C (GET /activity/:cpf): activity.get by pseudonym. */
		get: {
			callers: ["api"], scopes: ["activity:read"],
			params: { $$strict: true, cpf: f.cpf },
			async handler(ctx: Context<{ cpf: string }, MeshMeta, MeshLocals>) {
				const { cpf } = ctx.params;
				const payload = await ctx.call<object, { subject: string }>("activity.get", { subject: this.activitySubject(cpf) });
				return { cpf, ...payload };
			}
		},

		/** The movements with filters, totals and paging (GET /activity/:cpf/movements): activity.movements by pseudonym. */
		movements: {
			callers: ["api"], scopes: ["activity:read"],
			params: { $$strict: true, cpf: f.cpf, ...MOVEMENTS_QUERY },
			async handler(ctx: Context<{ cpf: string } & MovementsQuery, MeshMeta, MeshLocals>) {
				const { cpf, ...query } = ctx.params;
				const page = await ctx.call<object, MovementsQuery & { subject: string }>("activity.movements", { subject: this.activitySubject(cpf), ...query });
				return { cpf, ...page };
			}
		}
	},

	created() {
		this.activitySubject = activityPseudonym();
	}
};

// Checked above against its own `this`; handed over as Moleculer takes a schema, untyped (types/mixin.ts).
export default ActivityFrontService as unknown as ServiceSchema;
