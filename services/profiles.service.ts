import { randomUUID } from "node:crypto";
import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { BaseBMixin, type BaseBThis, ERASURES } from "../mixins/base-b.mixin";
import { PiiMixin, type PiiThis } from "../mixins/pii.mixin";
import type { MeshLocals, MeshMeta } from "../middlewares/zero-trust.middleware";
import { ASSET_TYPES, INCOME_SOURCES } from "../lib/base-b/catalog";
import { type Asset, type ProfileDoc, profileView } from "../lib/base-b/profile";
import { SCORE_HISTORY, SCORE_LATEST } from "../lib/base-b/score-history";
import { WRITE_MARKS, createdByMark, expiredMarks, markOf, markPath } from "../lib/base-b/write-marks";
import { scoreProfile } from "../lib/base-b/score";
import { todayIso, yearsBetween } from "../lib/dates";
import { ConflictError, ForbiddenError, InvalidFieldError, NotFoundError, isDuplicateKeyError } from "../lib/errors";
import * as f from "../lib/fields";
import { REENCRYPT_BATCH } from "../lib/pii";
import { BATCH_CHUNK } from "../lib/batch";

interface ProfileParams {
	cpf: string;
	dataNascimento: string;
	idade?: number;
	endereco: string;
	fonteDeRenda: string;
	bens: Asset[];
}

const SEALED = ["cpf", "endereco", "dataNascimento"] as const;

/** Dates a client could not mean: a birth in the future, an asset owned before birth or from the future. */
function checkDates(p: ProfileParams, today: string): void {
	if (p.dataNascimento > today) throw new InvalidFieldError("dataNascimento", "A birth date cannot be in the future.", "dateMax");
	if (yearsBetween(p.dataNascimento, today) > 130) throw new InvalidFieldError("dataNascimento", "A birth date more than 130 years ago is not plausible.", "dateMin");
	if (p.idade !== undefined && p.idade !== yearsBetween(p.dataNascimento, today)) {
		throw new InvalidFieldError("idade", "'idade' is derived from 'dataNascimento' and does not match it; leave it out.", "derived");
	}
	p.bens.forEach((b, i) => {
		if (b.inicioPosse > today) throw new InvalidFieldError(`bens[${i}].inicioPosse`, "A possession cannot start in the future.", "dateMax");
		if (b.inicioPosse < p.dataNascimento) throw new InvalidFieldError(`bens[${i}].inicioPosse`, "A possession cannot start before the birth date.", "dateMin");
	});
}

/** A write accepted before the erasure of its CPF: refused, whichever side of the erasure it reached Base B. */
const erasedMeanwhile = () => new ConflictError("This CPF was erased while the request was in flight; send it again to record it as new", "ERASED_MEANWHILE");

/** The Idempotency-Key this write runs under (claimed by middlewares/idempotency.middleware.ts), with its mark. */
function writeKey(ctx: Context<ProfileParams, MeshMeta, MeshLocals>): { key: string; claim: string; mark: string } | null {
	const key = ctx.meta.idempotency?.action === "profiles.put" ? ctx.meta.idempotency.key : undefined;
	const claim = ctx.locals.idempotencyClaim;
	const consumer = ctx.locals.caller?.id;
	return key && claim && consumer ? { key, claim, mark: markOf(consumer, key) } : null;
}

/** A retried write found its key's mark: the write happened; answered as it was then (201 if it created the profile). */
function recognised(ctx: Context<ProfileParams, MeshMeta, MeshLocals>, doc: Pick<ProfileDoc, "createdAt" | "writes">, mark: string, p: ProfileParams, bens: Asset[], today: string) {
	ctx.locals.created = createdByMark(doc, mark);
	ctx.service?.logger.info("A retried profile write was recognised by its Idempotency-Key's mark; not written again");
	return profileView({ fonteDeRenda: p.fonteDeRenda, bens } as ProfileDoc, p, today);
}

/** Base B: financial profiles (payload B), one per CPF, keyed by its blind index. */
const ProfilesService: ServiceSchema<ServiceSettingSchema, object, BaseBThis & PiiThis> = {
	name: "profiles",
	mixins: [BaseBMixin(), PiiMixin],

	actions: {
		put: {
			// No transactions in Base B: a `started` row goes in first, so no write exists without its row.
			callers: ["api"], scopes: ["profiles:write"], audit: { before: "started" },
			params: {
				$$strict: true,
				cpf: f.cpf,
				dataNascimento: f.date,
				// Derived from dataNascimento; tolerated (when it agrees) so a payload B read can be sent back.
				idade: { type: "number", integer: true, min: 0, max: 130, optional: true, openapi: false },
				endereco: f.endereco,
				fonteDeRenda: { type: "enum", values: [...INCOME_SOURCES] },
				bens: {
					type: "array", max: 100,
					items: { type: "object", strict: true, props: { tipo: { type: "enum", values: ASSET_TYPES }, inicioPosse: f.date, quitado: "boolean" } }
				}
			},
			async handler(ctx: Context<ProfileParams, MeshMeta, MeshLocals>) {
				const p = ctx.params;
				const today = todayIso();
				checkDates(p, today);
				const bidx = this.blindIndex(p.cpf);
				const sealed = this.sealFields("profiles", bidx, { cpf: p.cpf, endereco: p.endereco, dataNascimento: p.dataNascimento });
				const bens = p.bens.map(b => ({ tipo: b.tipo, inicioPosse: b.inicioPosse, quitado: b.quitado }));
				// The moment this write was accepted; an erasure at or after it wins (docs/erasure.md).
				const now = new Date();
				const before = await this.erasedAt(bidx);
				if (before && before >= now) throw erasedMeanwhile();
				// Under an Idempotency-Key, the write marks the document with it (docs/idempotency.md, "Base B"): a
				// retry whose first attempt wrote and died before its answer was stored finds the mark, and is
				// answered from it instead of writing a second time.
				const keyed = writeKey(ctx);
				const seen = keyed ? await this.adapter.collection.findOne({ _id: bidx }, { projection: { createdAt: 1, [WRITE_MARKS]: 1 } }) : null;
				if (keyed && seen?.writes?.[keyed.mark]) return recognised(ctx, seen, keyed.mark, p, bens, today);
				// The claim must still be this request's: a node thought gone (its claim taken over) cannot ask, and does not write.
				if (keyed && !(await ctx.call("idempotency.held", { key: keyed.key, claim: keyed.claim }))) {
					throw new ConflictError("A request with this Idempotency-Key is still in progress", "IDEMPOTENCY_IN_PROGRESS");
				}
				// No transactions in Base B: the event is an intent in Base A's outbox first, the document names
				// it, and it is confirmed after (or, if this node dies, by the relay finding it here: docs/webhooks.md).
				const eventId = randomUUID();
				await ctx.call("events-relay.intend", { id: eventId, type: "profile.changed", cpfBidx: bidx, acceptedAt: now.toISOString() });
				const unset = keyed ? expiredMarks(seen?.writes, now) : {};
				const upsert = () => this.adapter.collection.updateOne(
					// A document that already holds this key's mark is not matched: the upsert's insert then fails on the _id.
					keyed ? { _id: bidx, [markPath(keyed.mark)]: { $exists: false } } : { _id: bidx },
					{
						$set: { ...sealed, fonteDeRenda: p.fonteDeRenda, bens, updatedAt: now, lastEventId: eventId, ...(keyed ? { [markPath(keyed.mark)]: now } : {}) },
						$setOnInsert: { createdAt: now },
						...(Object.keys(unset).length > 0 ? { $unset: unset } : {})
					},
					{ upsert: true }
				);
				// Two PUTs of a new profile at once both try to insert; the loser of the race for the _id gets a
				// duplicate key (FerretDB always, MongoDB outside the cases it retries itself). Run again, it is
				// the replacement it would have been a moment later (found by test/faults.test.ts). Under a key, the
				// document may hold the key's mark by now (the write of a claim taken over landed first): recognised.
				let result = await upsert().catch((err: unknown) => {
					if (isDuplicateKeyError(err)) return null;
					throw err;
				});
				if (!result) {
					const doc = keyed ? await this.adapter.collection.findOne({ _id: bidx }, { projection: { createdAt: 1, [WRITE_MARKS]: 1 } }) : null;
					// This request's intent then names no document: the relay's sweep discards it.
					if (keyed && doc?.writes?.[keyed.mark]) return recognised(ctx, doc, keyed.mark, p, bens, today);
					result = await upsert();
				}
				// Base B has no transactions: checked again after the write. Either the erasure's tombstone is seen
				// here (the write is undone), or it was written after this check, hence after the write, and the
				// erasure's delete, which follows its tombstone, removes the write.
				const erased = await this.erasedAt(bidx);
				if (erased && erased >= now) {
					await this.adapter.collection.deleteOne({ _id: bidx, updatedAt: now });
					throw erasedMeanwhile();
				}
				// The route table makes this a 201 with its Location (middlewares/http-status.middleware.ts).
				ctx.locals.created = result.upsertedCount === 1;
				await ctx.call("events-relay.confirm", { id: eventId }).catch((err: Error) => this.logger.warn("Profile event left to the relay's sweep:", err?.name));
				return profileView({ fonteDeRenda: p.fonteDeRenda, bens } as ProfileDoc, p, today);
			}
		},

		get: {
			callers: ["api", "report"], scopes: ["profiles:read"], audit: true, consultation: true,
			params: { $$strict: true, cpf: f.cpf },
			async handler(ctx: Context<{ cpf: string }, MeshMeta, MeshLocals>) {
				const bidx = this.blindIndex(ctx.params.cpf);
				const doc: ProfileDoc | null = await this.adapter.collection.findOne({ _id: bidx });
				if (!doc) throw new NotFoundError("Profile");
				return profileView(doc, this.openFields("profiles", bidx, doc, SEALED), todayIso());
			}
		},

		/**
		 * Base B's parts of a chunk of a batch (POST /reports/batch) from one `$in` on the blind indexes:
		 * per CPF `profile` (payload B, sealed fields opened; scope profiles:read) and/or `score` (the asset
		 * score as asset-score.get answers it, lib/base-b/score.ts; scope score:read), as `parts` asks; null
		 * where there is no profile. One read for both: on FerretDB v1 each `$in` scans the collection
		 * (docs/batch.md). A part whose scope the caller lacks is refused (403), never left out silently.
		 * One audit row for the read; the batch files one per CPF under its own name.
		 */
		getMany: {
			callers: ["report"], scopes: ["profiles:read", "score:read"], audit: true,
			params: {
				$$strict: true,
				cpfs: { type: "array", items: f.cpf, min: 1, max: BATCH_CHUNK },
				parts: { type: "array", items: { type: "enum", values: ["profile", "score"] }, min: 1, unique: true, default: ["profile"] }
			},
			async handler(ctx: Context<{ cpfs: string[]; parts: ("profile" | "score")[] }, MeshMeta, MeshLocals>) {
				const { cpfs, parts } = ctx.params;
				const scopes = ctx.locals.caller?.scopes ?? [];
				for (const [part, scope] of [["profile", "profiles:read"], ["score", "score:read"]] as const) {
					if (parts.includes(part) && !scopes.includes(scope)) throw new ForbiddenError(`The ${part} part needs the ${scope} scope`, "ERR_MISSING_SCOPE", { required: scope });
				}
				const profile = parts.includes("profile");
				const score = parts.includes("score");
				const bidxs = cpfs.map(cpf => this.blindIndex(cpf));
				// Only what the parts need: the asset score opens the birth date alone.
				const projection = profile ? {} : { projection: { dataNascimento_enc: 1, fonteDeRenda: 1, bens: 1 } };
				const docs: ProfileDoc[] = await this.adapter.collection.find({ _id: { $in: bidxs } }, projection).toArray();
				const today = todayIso();
				const byBidx = new Map(docs.map(doc => [doc._id, doc]));
				return bidxs.map((b, i) => {
					const doc = byBidx.get(b);
					if (!doc) return null;
					const opened = this.openFields("profiles", b, doc, profile ? SEALED : ["dataNascimento"]);
					return {
						...(profile && { profile: profileView(doc, opened as Record<(typeof SEALED)[number], string>, today) }),
						...(score && { score: { cpf: cpfs[i], ...scoreProfile({ dataNascimento: opened.dataNascimento, fonteDeRenda: doc.fonteDeRenda, bens: doc.bens }, today) } })
					};
				});
			}
		},

		/** For the outbox relay: whether the write an intent announced reached the profile (docs/webhooks.md). */
		eventApplied: {
			callers: ["base-a"],
			visibility: "public",
			params: { cpfBidx: { type: "string", length: 64 }, id: "uuid" },
			async handler(ctx: Context<{ cpfBidx: string; id: string }>) {
				const doc = await this.adapter.collection.findOne({ _id: ctx.params.cpfBidx }, { projection: { lastEventId: 1 } });
				return doc?.lastEventId === ctx.params.id;
			}
		},

		/** LGPD access: payload B of a person (by blind index), or null. */
		export: {
			callers: ["privacy"], scopes: ["privacy:admin"], audit: true,
			visibility: "public",
			params: { cpfBidx: { type: "string", length: 64 } },
			async handler(ctx: Context<{ cpfBidx: string }, MeshMeta, MeshLocals>) {
				const bidx = ctx.params.cpfBidx;
				const doc: ProfileDoc | null = await this.adapter.collection.findOne({ _id: bidx });
				return doc ? profileView(doc, this.openFields("profiles", bidx, doc, SEALED), todayIso()) : null;
			}
		},

		/**
		 * One batch of `keys:reencrypt`: the profiles after `after` (by _id), each field not under the
		 * current PII key sealed again under it. No transactions here: each profile is replaced only if its
		 * sealed fields are still those read (a write meanwhile sealed them under the current key anyway).
		 */
		reencrypt: {
			callers: ["operators"], scopes: [], audit: { before: "started" },
			visibility: "public",
			params: { $$strict: true, after: { type: "string", length: 64, optional: true }, limit: REENCRYPT_BATCH },
			async handler(ctx: Context<{ after?: string; limit: number }, MeshMeta, MeshLocals>) {
				const { after, limit } = ctx.params;
				const docs = await this.adapter.collection.find(after ? { _id: { $gt: after } } : {}).sort({ _id: 1 }).limit(limit).toArray();
				let changed = 0;
				let unreadable = 0;
				for (const doc of docs) {
					const sealedNow = doc as unknown as Record<`${(typeof SEALED)[number]}_enc`, string>;
					if (!SEALED.some(field => this.pii.isStale(sealedNow[`${field}_enc`]))) continue;
					let sealed: Record<string, string>;
					try {
						sealed = this.sealFields("profiles", doc._id, this.openFields("profiles", doc._id, doc, SEALED));
					} catch {
						unreadable++;
						continue;
					}
					const unchanged = Object.fromEntries(SEALED.map(field => [`${field}_enc`, sealedNow[`${field}_enc`]]));
					const res = await this.adapter.collection.updateOne({ _id: doc._id, ...unchanged }, { $set: sealed });
					changed += res.modifiedCount ?? 0;
				}
				const total = after ? undefined : await this.adapter.collection.countDocuments();
				return { scanned: docs.length, changed, unreadable, next: docs.length === limit ? docs[docs.length - 1]._id : null, total };
			}
		},

		/** LGPD erasure of the profile, after its tombstone (docs/erasure.md). Idempotent. */
		erase: {
			callers: ["privacy"], audit: { before: "started" },
			visibility: "public",
			params: { cpfBidx: { type: "string", length: 64 } },
			async handler(ctx: Context<{ cpfBidx: string }, MeshMeta, MeshLocals>) {
				const bidx = ctx.params.cpfBidx;
				// The tombstone first, so that a write racing this erasure sees it (see put).
				await this.adapter.db.collection<{ _id: string; erasedAt: Date }>(ERASURES).updateOne({ _id: bidx }, { $set: { erasedAt: new Date() } }, { upsert: true });
				// The kept credit scores go with the profile (docs/credit-score.md, "History").
				await this.adapter.db.collection(SCORE_HISTORY).deleteMany({ bidx });
				await this.adapter.db.collection<{ _id: string }>(SCORE_LATEST).deleteOne({ _id: bidx });
				return { erased: (await this.adapter.collection.deleteOne({ _id: bidx })).deletedCount ?? 0 };
			}
		}
	},



	/** Indexes the ML jobs and the export read by; `_id` (the blind index) makes a profile unique per CPF. */
	async afterConnected() {
		await this.adapter.collection.createIndex({ updatedAt: 1 });
		await this.adapter.collection.createIndex({ fonteDeRenda: 1 });
	}
};

// Checked above against its own `this`; handed over as Moleculer takes a schema, untyped (types/mixin.ts).
export default ProfilesService as unknown as ServiceSchema;
