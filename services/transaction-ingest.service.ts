import { createHash } from "node:crypto";
import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { Errors } from "moleculer";
import type { MeshLocals, MeshMeta } from "../middlewares/zero-trust.middleware";
import { config } from "../config";
import { activityPseudonym } from "../lib/base-c/subject";
import { type MovementBatch, type MovementRecord, MAX_REPORTED_ERRORS, MOVEMENT_LIMIT, splitBody, toRecords, validateMovements } from "../lib/base-c/movement";
import { tooManyItems } from "../lib/errors";

/** Movements per JetStream message: one message per slice of a request keeps the channel cheap. */
const RECORDS_PER_MESSAGE = 1000;

interface TransactionIngestThis {
	/** A person's key in Base C (lib/base-c/subject.ts). */
	activitySubject: (cpf: string) => string;
}

/**
 * Base C's front door for movements (group base-c-front: PSEUDONYM_KEY, no Elasticsearch credential):
 * takes movements in (one, a JSON array or NDJSON), turns each CPF into its pseudonym, and answers 202
 * once JetStream has stored the pseudonymised records. base-c's transaction-writer writes them to
 * Elasticsearch; no CPF goes further than this service.
 */
const TransactionIngestService: ServiceSchema<ServiceSettingSchema, object, TransactionIngestThis> = {
	name: "transaction-ingest",

	actions: {
		ingest: {
			callers: ["api"], scopes: ["transactions:write"],
			// The gateway passes the raw body (mergeParams off): an object, an array or NDJSON text.
			params: { body: { type: "any" } },
			async handler(ctx: Context<{ body: unknown }, MeshMeta, MeshLocals>) {
				const { items, errors: parseErrors, tooMany } = splitBody(ctx.params.body, config.ingestMaxMovements);
				if (tooMany) {
					throw tooManyItems(MOVEMENT_LIMIT);
				}
				const { movements, errors } = validateMovements(items);
				const all = [...parseErrors, ...errors].sort((a, b) => a.index - b.index);
				if (all.length > 0 || movements.length === 0) {
					// All or nothing: a batch with a bad line is refused whole, every bad line named by its index.
					throw new Errors.MoleculerClientError(
						movements.length === 0 && all.length === 0 ? "No movement in the body" : "Some movements are invalid; nothing was accepted",
						422, "VALIDATION_ERROR", all.slice(0, MAX_REPORTED_ERRORS));
				}
				const records = toRecords(movements, this.activitySubject);
				// One message per slice; its id comes from its movements' ids, so a resent request is
				// dropped by JetStream's duplicate window before it costs Elasticsearch anything.
				const slices: MovementRecord[][] = [];
				for (let i = 0; i < records.length; i += RECORDS_PER_MESSAGE) slices.push(records.slice(i, i + RECORDS_PER_MESSAGE));
				await Promise.all(slices.map(slice => {
					const msgID = createHash("sha256").update(slice.map(r => r.movement_id).join(",")).digest("base64url");
					return this.broker.channels.publish("transactions", { records: slice } satisfies MovementBatch, msgID);
				}));
				return { accepted: records.length };
			}
		}
	},

	created() {
		this.activitySubject = activityPseudonym();
	}
};

// Checked above against its own `this`; handed over as Moleculer takes a schema, untyped (types/mixin.ts).
export default TransactionIngestService as unknown as ServiceSchema;
