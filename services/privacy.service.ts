import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { PiiMixin, type PiiThis } from "../mixins/pii.mixin";
import type { Delivery } from "../middlewares/channels.middleware";
import type { MeshLocals, MeshMeta } from "../middlewares/zero-trust.middleware";
import { activityPseudonym } from "../lib/base-c/subject";
import type { Thrown } from "../lib/errors";
import * as f from "../lib/fields";

/** The consumer leaves a fresh request to the request that made it, which usually finishes it inline. */
const GRACE_MS = 15_000;

/** What an erasure needs: the keys each base files the person under; never the CPF itself. */
interface Erasure {
	cpfBidx: string;
	subject: string;
	requestedAt: string;
}

type BaseState = "erased" | "pending";

interface PrivacyMethods {
	eraseEverywhere(ctx: Context<unknown, MeshMeta, MeshLocals> | null, e: Erasure): Promise<Record<"A" | "B" | "C", BaseState>>;
	auditTrail(ctx: Context<unknown, MeshMeta, MeshLocals>, cpf: string): Promise<{ entries: unknown[]; next: number | null }>;
	finishErasures(batch: Delivery<Erasure>[]): Promise<void>;
}

interface PrivacyVars extends PiiThis {
	/** The person's key in Base C (lib/base-c/subject.ts). */
	activitySubject: (cpf: string) => string;
}

/** Audit rows in one access export (see activity's EXPORT_MAX_MOVEMENTS for why a bound). */
export const EXPORT_MAX_AUDIT = 5_000;

/**
 * LGPD rights over all three bases. Access gathers everything held on a CPF, its audit trail included.
 * Erasure is durable: the request is stored on JetStream first, every base is asked at once, and a
 * base that is down is retried by the consumer until it confirms — success is never reported early.
 */
const PrivacyService: ServiceSchema<ServiceSettingSchema, PrivacyMethods, PrivacyVars> = {
	name: "privacy",
	mixins: [PiiMixin],

	created() {
		/** The person's key in Base C, to find and erase their movements there. */
		this.activitySubject = activityPseudonym();
	},

	actions: {
		access: {
			callers: ["api"], scopes: ["privacy:admin"], audit: true,
			params: { $$strict: true, cpf: f.cpf },
			async handler(ctx: Context<{ cpf: string }, MeshMeta, MeshLocals>) {
				const { cpf } = ctx.params;
				const cpfBidx = this.blindIndex(cpf);
				// Partial answers would mislead: any base down fails the request (503), to be retried.
				const [baseA, baseB, baseC, audit] = await Promise.all([
					ctx.call("persons.export", { cpfBidx }),
					ctx.call("profiles.export", { cpfBidx }),
					ctx.call("activity.export", { subject: this.activitySubject(cpf) }),
					this.auditTrail(ctx, cpf)
				]);
				return { cpf, baseA, baseB, baseC, audit: audit.entries, auditNext: audit.next };
			}
		},

		erase: {
			// `requested` first; `ok` once every base confirmed, here or later by the worker (finishErasures).
			callers: ["api"], scopes: ["privacy:admin"],
			audit: { before: "requested", outcome: (result: { status: string }) => (result.status === "erased" ? "ok" : null) },
			params: { $$strict: true, cpf: f.cpf },
			async handler(ctx: Context<{ cpf: string }, MeshMeta, MeshLocals>) {
				const erasure: Erasure = { cpfBidx: this.blindIndex(ctx.params.cpf), subject: this.activitySubject(ctx.params.cpf), requestedAt: new Date().toISOString() };
				// Durable first: if this node dies now, the consumer still finishes the job.
				const stored = await this.broker.channels.publish("erasures", erasure);
				const bases = await this.eraseEverywhere(ctx, erasure);
				const done = Object.values(bases).every(s => s === "erased");
				if (done) await this.broker.channels.forget("erasures", stored.seq);
				return { cpf: ctx.params.cpf, status: done ? "erased" : "pending", bases };
			}
		}
	},

	methods: {
		/** Asks every base to erase; a base that cannot answer now stays pending. */
		async eraseEverywhere(ctx: Context<unknown, MeshMeta, MeshLocals> | null, e: Erasure): Promise<Record<"A" | "B" | "C", BaseState>> {
			const call = (action: string, params: object) => (ctx ? ctx.call(action, params) : this.broker.call(action, params, { caller: this.fullName }));
			const attempt = (action: string, params: object): Promise<BaseState> =>
				call(action, params).then(() => "erased" as const, (err: unknown) => {
					this.logger.warn(`Erasure pending on ${action}:`, (err as Thrown)?.type ?? (err as Thrown)?.name);
					return "pending" as const;
				});
			const [A, B, C] = await Promise.all([
				attempt("persons.erase", { cpfBidx: e.cpfBidx }),
				attempt("profiles.erase", { cpfBidx: e.cpfBidx }),
				attempt("activity.erase", { subject: e.subject })
			]);
			return { A, B, C };
		},

		/**
		 * The CPF's audit trail, oldest first, at most EXPORT_MAX_AUDIT rows (the answer must fit a NATS
		 * message); `next` is where GET /audit?cpf=&after= continues, null when all is here.
		 */
		async auditTrail(ctx: Context<unknown, MeshMeta, MeshLocals>, cpf: string) {
			const entries: unknown[] = [];
			let after: number | null = 0;
			while (after !== null && entries.length < EXPORT_MAX_AUDIT) {
				const page: { entries: unknown[]; next: number | null } = await ctx.call("audit.list", { cpf, after, limit: Math.min(500, EXPORT_MAX_AUDIT - entries.length) });
				entries.push(...page.entries);
				after = page.next;
			}
			return { entries, next: after };
		},

		/** The consumer's side: finish erasures a base was down for; ack only when all three confirmed. */
		async finishErasures(batch: Delivery<Erasure>[]) {
			for (const d of batch) {
				if (!d.data?.cpfBidx || !d.data?.subject) {
					d.msg.term();
					continue;
				}
				const age = Date.now() - Date.parse(d.data.requestedAt);
				if (age < GRACE_MS) {
					d.msg.nak(GRACE_MS - age);
					continue;
				}
				const bases = await this.eraseEverywhere(null, d.data);
				if (Object.values(bases).every(s => s === "erased")) {
					await this.broker.call("audit.append", { action: "privacy.erase", cpfBidx: d.data.cpfBidx, outcome: "ok" }, { caller: this.fullName });
					d.msg.ack();
				} else d.msg.nak(Math.min(60_000, 2000 * 2 ** Math.min(d.msg.info.redeliveryCount, 5)));
			}
		}
	},

	channels: {
		erasures: { durable: "privacy-erasures", batchSize: 10, handler(batch: Delivery<Erasure>[]) { return this.finishErasures(batch); } }
	}
};

// Checked above against its own `this`; handed over as Moleculer takes a schema, untyped (types/mixin.ts).
export default PrivacyService as unknown as ServiceSchema;
