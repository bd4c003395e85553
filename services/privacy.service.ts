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
	withConsumerNames(ctx: Context<unknown, MeshMeta, MeshLocals>, consultations: StoredConsultation[]): Promise<NamedConsultation[]>;
}

/** A consultation as Base C gives it (activity), and as this service answers it: the consumer named from Base A. */
interface StoredConsultation { at: string; consumer: string; purpose: string | null }
interface NamedConsultation { at: string; purpose: string | null; consumer: { id: string; name: string | null } }

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

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
					ctx.call<{ consultations: StoredConsultation[] }, { subject: string }>("activity.export", { subject: this.activitySubject(cpf) }),
					this.auditTrail(ctx, cpf)
				]);
				// Who consulted, by name (LGPD art. 18, VII: with whom the data was shared), and why.
				const consultations = await this.withConsumerNames(ctx, baseC.consultations);
				return { cpf, baseA, baseB, baseC: { ...baseC, consultations }, audit: audit.entries, auditNext: audit.next };
			}
		},

		/** Who consulted a CPF, for which purpose and when (GET /consultations/:cpf): audited, not itself a consultation. */
		consultations: {
			callers: ["api"], scopes: ["consultations:read"], audit: true,
			params: {
				$$strict: true,
				cpf: f.cpf,
				size: { type: "number", integer: true, min: 1, max: 200, convert: true, default: 50 },
				after: { type: "string", max: 200, optional: true, openapi: { description: "Opaque cursor: the `next` of the previous page, passed back unchanged" } }
			},
			async handler(ctx: Context<{ cpf: string; size: number; after?: string }, MeshMeta, MeshLocals>) {
				const { cpf, size, after } = ctx.params;
				const page = await ctx.call<{ total: number; consultations: StoredConsultation[]; next: string | null }, object>("activity.consultations", { subject: this.activitySubject(cpf), size, after });
				return { cpf, total: page.total, consultations: await this.withConsumerNames(ctx, page.consultations), next: page.next };
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

		/** Consultations with their consumers' names, resolved in one call to Base A whatever their number. */
		async withConsumerNames(ctx: Context<unknown, MeshMeta, MeshLocals>, consultations: StoredConsultation[]) {
			const ids = [...new Set(consultations.map(c => c.consumer).filter(id => UUID.test(id)))];
			const names: Record<string, string> = ids.length ? await ctx.call("consumers.names", { ids }) : {};
			return consultations.map(c => ({ at: c.at, purpose: c.purpose, consumer: { id: c.consumer, name: names[c.consumer] ?? null } }));
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
