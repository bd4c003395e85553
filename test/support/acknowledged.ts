import { createHash } from "node:crypto";
import { config } from "../../config";
import { activitySubject, piiCipher } from "./keys";
import { ownerQuery } from "./db";
import { withEs } from "./es";
import { withMongo } from "./mongo";

/** What clients were told was written (the workload's `Acknowledged`). */
export interface AcknowledgedWrites {
	persons: string[];
	debts: { cpf: string; id: string }[];
	profiles: string[];
	movements: { cpf: string; id: string }[];
}

export interface FoundWrites { persons: number; debts: number; profiles: number; movements: number }

const unique = <T>(xs: T[], key: (x: T) => string = String) => [...new Map(xs.map(x => [key(x), x])).values()];
const chunks = <T>(xs: T[], n: number) => Array.from({ length: Math.ceil(xs.length / n) }, (_, i) => xs.slice(i * n, i * n + n));

/** The Elasticsearch id of a movement sent with a client id (lib/base-c/movement.ts toRecords). */
export function movementDocId(cpf: string, id: string): string {
	return createHash("sha256").update(`id|${activitySubject(cpf)}|${id}`).digest("base64url");
}

/** A query as Base A's schema owner (default: the test cluster's; the failover test passes the pair's). */
export type OwnerQuery = (sql: string, params: unknown[]) => Promise<any[]>;

/** Persons of these CPFs in Base A (by blind index), counted in the table itself. */
export async function countPersons(cpfs: string[], query: OwnerQuery = ownerQuery): Promise<number> {
	const bidx = unique(cpfs).map(c => piiCipher().blindIndex(c));
	if (bidx.length === 0) return 0;
	const [row] = await query("SELECT count(*)::int AS n FROM persons WHERE cpf_bidx = ANY($1::text[])", [bidx]);
	return row.n;
}

/** Debts by id, each under the person of its CPF, in Base A. */
export async function countDebts(debts: { cpf: string; id: string }[], query: OwnerQuery = ownerQuery): Promise<number> {
	const list = unique(debts, d => d.id);
	if (list.length === 0) return 0;
	const [row] = await query(
		`SELECT count(*)::int AS n FROM debts d JOIN persons p ON p.id = d.person_id
		   JOIN unnest($1::text[], $2::uuid[]) AS w(bidx, id) ON w.bidx = p.cpf_bidx AND w.id = d.id`,
		[list.map(d => piiCipher().blindIndex(d.cpf)), list.map(d => d.id)]);
	return row.n;
}

/** Profiles of these CPFs in Base B (`_id` is the blind index), with the raw driver. */
export async function countProfiles(cpfs: string[]): Promise<number> {
	const ids = unique(cpfs).map(c => piiCipher().blindIndex(c));
	return withMongo(async db => {
		let n = 0;
		for (const part of chunks(ids, 500)) n += Number(await db.collection("profiles").countDocuments({ _id: { $in: part } } as any, {}));
		return n;
	});
}

/** Movements by their client ids in Base C (indices named with `prefix`), after a refresh. */
export async function countMovementsById(movements: { cpf: string; id: string }[], prefix = config.esIndexPrefix): Promise<number> {
	const ids = unique(movements.map(m => movementDocId(m.cpf, m.id)));
	if (ids.length === 0) return 0;
	return withEs(async es => {
		const target = `${prefix}-movements`;
		await es.indices.refresh({ index: target });
		let n = 0;
		for (const part of chunks(ids, 5000)) n += (await es.count({ index: target, query: { ids: { values: part } } })).count;
		return n;
	});
}

/** How many of the acknowledged writes are in their bases (movements may still be on their way). */
export async function countAcknowledged(ack: AcknowledgedWrites, esIndexPrefix = config.esIndexPrefix): Promise<FoundWrites> {
	return {
		persons: await countPersons(ack.persons),
		debts: await countDebts(ack.debts),
		profiles: await countProfiles(ack.profiles),
		movements: await countMovementsById(ack.movements, esIndexPrefix)
	};
}

/** The distinct acknowledged writes of each kind: what countAcknowledged must find. */
export function expectedCounts(ack: AcknowledgedWrites): FoundWrites {
	return {
		persons: unique(ack.persons).length,
		debts: unique(ack.debts, d => d.id).length,
		profiles: unique(ack.profiles).length,
		movements: unique(ack.movements.map(m => movementDocId(m.cpf, m.id))).length
	};
}
