import { randomUUID } from "node:crypto";
import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { BaseBMixin, type BaseBThis } from "../mixins/base-b.mixin";
import { PiiMixin, type PiiThis } from "../mixins/pii.mixin";
import { config, need } from "../config";
import { pseudonymizer } from "../lib/pii";
import type { ProfileDoc } from "../lib/base-b/profile";
import { type ExportPage, featureRow } from "../lib/base-b/features";
import { SCORE_LATEST, type ScoreDoc, creditScoreColumns } from "../lib/base-b/score-history";
import { todayIso } from "../lib/dates";
import { ExportsBusyError, NotFoundError } from "../lib/errors";

/** Profiles per page (≈ 180 KiB of NDJSON): their latest credit scores come in one query. */
const PAGE = 500;
/** An export whose next page is not asked for within this is closed: its client went away. */
const IDLE_MS = 60_000;
/** Exports open at once on one node: each holds a cursor and a page; past this, 503 with Retry-After. */
const MAX_OPEN = 8;

/** One export under way on this node: its cursor, the day its ages are computed on, and its idle timer. */
interface OpenExport {
	cursor: { next(): Promise<ProfileDoc | null>; close(): Promise<unknown> };
	today: string;
	idle?: ReturnType<typeof setTimeout>;
}

interface MlExportMethods {
	/** The next page of an open export; closes it after its last. */
	nextPage(id: string, open: OpenExport): Promise<ExportPage>;
	/** Closes an export and forgets it. */
	closeExport(id: string): Promise<void>;
}

interface MlExportVars extends BaseBThis, PiiThis {
	/** The ML pseudonym of a profile, from its blind index. */
	subjectOf: (cpfBidx: string) => string;
	/** The exports open on this node (state per broker), by their random id. */
	open: Map<string, OpenExport>;
}

type ExportRef = { export: string };

/** The open export of this id. */
function openOf(this: MlExportVars, ctx: Context<ExportRef>): OpenExport {
	const open = this.open.get(ctx.params.export);
	if (!open) throw new NotFoundError("Export (closed, idle for too long, or on another node)");
	return open;
}

/**
 * Base B: one NDJSON feature row per profile for model training, keyed by the ML pseudonym, with the
 * person's latest credit score and its components. The export is pulled a page at a time by the
 * gateway (mixins/ml-export-pull.mixin.ts), which asks for the next page only when the client has taken the last:
 * memory is bounded on every node whatever the export's size and the client's speed (docs/ml-export.md).
 * The cursor stays open on this node between pages (FerretDB scans the whole collection for a keyset
 * page: one cursor keeps the export one pass).
 */
const MlExportService: ServiceSchema<ServiceSettingSchema, MlExportMethods, MlExportVars> = {
	name: "ml-export",
	mixins: [BaseBMixin(), PiiMixin],

	created() {
		// Keyed on the blind index, with its own key: unlinkable to it or to Base C's pseudonym.
		this.subjectOf = pseudonymizer(need(config, "pseudonymKey"), "ml");
		this.open = new Map();
	},

	actions: {
		/** Opens an export and answers its first page: the act of exporting, audited once. */
		features: {
			// One audit row for the act of exporting: it reads every profile, never one person's data.
			callers: ["api"], scopes: ["ml:export"], audit: { before: "started", outcome: () => null },
			params: { $$strict: true },
			async handler(): Promise<ExportPage> {
				if (this.open.size >= MAX_OPEN) throw new ExportsBusyError();
				const id = randomUUID();
				const open: OpenExport = {
					cursor: this.adapter.collection.find({}, { projection: { dataNascimento_enc: 1, fonteDeRenda: 1, bens: 1 }, batchSize: PAGE }),
					today: todayIso()
				};
				this.open.set(id, open);
				return this.nextPage(id, open);
			}
		},

		/**
		 * The next page of an export this node opened (the gateway calls the node that answered `features`).
		 * The export's random id is the capability, known only to the gateway that opened it: no caller
		 * token, which would expire (CALLER_TOKEN_SECONDS) before a long export ends.
		 */
		page: {
			callers: ["api"],
			params: { $$strict: true, export: "uuid" },
			handler(ctx: Context<ExportRef>): Promise<ExportPage> {
				return this.nextPage(ctx.params.export, openOf.call(this, ctx));
			}
		},

		/** Closes an export before its end (its client hung up). */
		close: {
			callers: ["api"],
			params: { $$strict: true, export: "uuid" },
			async handler(ctx: Context<ExportRef>) {
				openOf.call(this, ctx);
				await this.closeExport(ctx.params.export);
				return true;
			}
		}
	},

	methods: {
		async nextPage(id: string, open: OpenExport): Promise<ExportPage> {
			clearTimeout(open.idle);
			const chunk: ProfileDoc[] = [];
			let done = false;
			try {
				while (chunk.length < PAGE) {
					const doc = await open.cursor.next();
					if (!doc) {
						done = true;
						break;
					}
					chunk.push(doc);
				}
				const latest = this.adapter.db.collection<ScoreDoc & { _id: string }>(SCORE_LATEST);
				const scores = new Map((await latest.find({ _id: { $in: chunk.map(d => d._id) } }).toArray()).map(d => [d._id, d]));
				const lines = chunk.map(doc => {
					const { dataNascimento } = this.openFields("profiles", doc._id, doc, ["dataNascimento"]);
					const row = { ...featureRow(this.subjectOf(doc._id), dataNascimento, doc.fonteDeRenda, doc.bens, open.today), ...creditScoreColumns(scores.get(doc._id)) };
					return `${JSON.stringify(row)}\n`;
				}).join("");
				if (!done) open.idle = setTimeout(() => void this.closeExport(id), IDLE_MS).unref();
				return { export: id, node: this.broker.nodeID, lines, done };
			} catch (err) {
				done = true;
				throw err;
			} finally {
				if (done) await this.closeExport(id);
			}
		},

		async closeExport(id: string) {
			const open = this.open.get(id);
			if (!open) return;
			this.open.delete(id);
			clearTimeout(open.idle);
			await open.cursor.close().catch(() => undefined);
		}
	},

	async stopped() {
		await Promise.all([...this.open.keys()].map(id => this.closeExport(id)));
	}
};

// Checked above against its own `this`; handed over as Moleculer takes a schema, untyped (types/mixin.ts).
export default MlExportService as unknown as ServiceSchema;
