// The movements of a run, generated once: NDJSON bodies as clients send them, and the records the
// service makes of them.
import { randomInt } from "node:crypto";
import { MOVEMENT_TYPES, type MovementRecord, toRecords, validateMovements } from "../../lib/base-c/movement";
import { formatDate } from "../../lib/dates";
import { pick } from "../lib/data";

interface Dataset {
	/** NDJSON bodies of `batch` lines each, as clients send them. */
	bodies: string[];
	/** What the service makes of them (validateMovements + toRecords): the raw side writes these. */
	records: MovementRecord[];
}

const DAY_MS = 86_400_000;

/**
 * n movements spread evenly over the CPFs, tipo and amount at random, a date in the last two years
 * (DD/MM/YYYY, the wire format), and a client id unique to this run (`bench-<tag>-<i>`), so every id
 * is new to the index and the run's documents are exactly the ids computed here.
 */
export function generateMovements(n: number, cpfs: string[], tag: string, subjectOf: (cpf: string) => string, batch: number): Dataset {
	const today = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate());
	const items = Array.from({ length: n }, (_, i) => ({
		cpf: cpfs[i % cpfs.length],
		tipo: pick(MOVEMENT_TYPES),
		valor: randomInt(1, 2_000_000) / 100,
		data: formatDate(new Date(today - randomInt(730) * DAY_MS)),
		id: `bench-${tag}-${i}`
	}));
	const { movements, errors } = validateMovements(items);
	if (errors.length > 0) throw new Error(`generated movements fail the service's validation: ${JSON.stringify(errors.slice(0, 3))}`);
	const records = toRecords(movements, subjectOf);
	const bodies: string[] = [];
	for (let i = 0; i < n; i += batch) bodies.push(items.slice(i, i + batch).map(m => JSON.stringify(m)).join("\n"));
	return { bodies, records };
}
