import { config } from "../../config";

/** Index names carry a prefix (ES_INDEX_PREFIX) so dev and test share one server without meeting. */
export const index = {
	movements: () => `${config.esIndexPrefix}-movements`,
	consultations: () => `${config.esIndexPrefix}-consultations`,
	/** Erasure tombstones (docs/erasure.md): one per erased subject, its id the subject. */
	erasures: () => `${config.esIndexPrefix}-erasures`
};

// `dynamic: strict`: a field nobody declared is an error, not a silent new mapping. Money is a long of
// cents (no scaled_float here, and no float drift anywhere). Ids are kept as keywords for sorting.
export const MAPPINGS = {
	movements: {
		dynamic: "strict",
		properties: {
			movement_id: { type: "keyword" },
			subject: { type: "keyword" },
			tipo: { type: "keyword" },
			valor_cents: { type: "long" },
			data: { type: "date", format: "strict_date" },
			received_at: { type: "date" }
		}
	},
	consultations: {
		dynamic: "strict",
		properties: {
			consultation_id: { type: "keyword" },
			subject: { type: "keyword" },
			at: { type: "date" },
			source: { type: "keyword" },
			// Who consulted: the consumer id of the API key (a UUID, never a CPF), or "operator".
			consumer: { type: "keyword" },
			// The purpose stated for the consultation (lib/purposes.ts).
			purpose: { type: "keyword" }
		}
	},
	erasures: {
		dynamic: "strict",
		properties: {
			subject: { type: "keyword" },
			erased_at: { type: "date" }
		}
	}
} as const;
