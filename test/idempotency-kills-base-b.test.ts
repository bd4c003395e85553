// Exactly once under kill -9 for Base B (issue 17 item 1; docs/idempotency.md, "Base B"). The sibling of
// idempotency-kills.test.ts: the gateway, base-a and two base-b replicas run as in production. Round after
// round, a burst of profiles is PUT, each of a new CPF under its own Idempotency-Key, and one base-b replica
// is killed while they are in flight — some of its writes have landed in Base B and their answers are not
// stored yet (counted right after the kill) — then started again under the same node id. Every client retries
// its key until it is answered. A PUT is an upsert, so a second write of a key would leave the same fields;
// what it does change, and what is asserted:
//  - the answer: the one write of a key created its profile (201); a second write would replace it (200);
//  - the `profile.changed` events in Base A's outbox (docs/webhooks.md): one per write that landed, so one per
//    CPF, once every intent is settled (a second write would announce a second change to the webhooks);
//  - the document: it exists (nothing lost) and holds exactly its key's write mark.
import { setTimeout as sleep } from "node:timers/promises";
import { randomUUID } from "node:crypto";
import { Client } from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomCpf } from "../lib/cpf";
import { SCOPES } from "../lib/scopes";
import { markOf } from "../lib/base-b/write-marks";
import { config } from "../config";
import { type ReplicatedMesh, startReplicatedMesh } from "./support/replicas";
import { ownerQuery } from "./support/db";
import { piiCipher } from "./support/keys";
import { withMongo } from "./support/mongo";
import { seedPayloadB } from "./support/profiles";
import { eventually } from "./support/mesh";

const ROUNDS = 8;
const PER_ROUND = 40;
/** How long one key may take to get its answer: a claim of the killed node waits until the mesh knows it gone. */
const SETTLE_MS = 60_000;

let mesh: ReplicatedMesh;
let apiKey = "";
let consumer = "";

async function put(cpf: string, idem: string): Promise<{ status: number; body: any }> {
	const res = await fetch(`${mesh.bases[0]}/api/v1/profiles/${cpf}`, {
		method: "PUT", body: JSON.stringify(seedPayloadB), signal: AbortSignal.timeout(20_000),
		headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json", "idempotency-key": idem }
	});
	const text = await res.text();
	return { status: res.status, body: text ? JSON.parse(text) : null };
}

/** PUTs the profile of `cpf` under `idem` until it is answered; what it answered, and how many attempts it took. */
async function settle(cpf: string, idem: string): Promise<{ status: number; attempts: number }> {
	const until = Date.now() + SETTLE_MS;
	const statuses: number[] = [];
	for (;;) {
		const res = await put(cpf, idem).catch(() => ({ status: 0, body: null }));
		statuses.push(res.status);
		if (res.status === 200 || res.status === 201) return { status: res.status, attempts: statuses.length };
		// Only a retry's answers may come before it: in progress (409), unavailable (503), a lost connection (0).
		if (![0, 409, 502, 503, 504].includes(res.status) || (res.status === 409 && res.body?.type !== "IDEMPOTENCY_IN_PROGRESS")) {
			throw new Error(`${idem}: unexpected ${res.status} ${JSON.stringify(res.body)}`);
		}
		if (Date.now() > until) throw new Error(`${idem}: no answer within ${SETTLE_MS} ms (${statuses.join(",")})`);
		await sleep(300);
	}
}

/** The profiles of these blind indexes, with their write marks. */
function profiles(bidxs: string[]): Promise<{ _id: string; writes?: Record<string, Date> }[]> {
	return withMongo(db => db.collection<{ _id: string; writes?: Record<string, Date> }>("profiles").find({ _id: { $in: bidxs } }, { projection: { writes: 1 } }).toArray());
}

/** The keys of `batch` claimed by `nodeID` and not answered: those whose write is in Base B, and the others. */
async function inWindow(batch: { idem: string; bidx: string }[], nodeID: string): Promise<{ landed: string[]; notWritten: string[] }> {
	const open = await ownerQuery<{ key: string }>(
		"SELECT key FROM idempotency_keys WHERE consumer_id = $1 AND key = ANY($2) AND status IS NULL AND node_id LIKE $3",
		[consumer, batch.map(b => b.idem), `${nodeID}/%`]);
	if (open.length === 0) return { landed: [], notWritten: [] };
	const bidxOf = new Map(batch.map(b => [b.idem, b.bidx]));
	const marks = new Map((await profiles(open.map(o => bidxOf.get(o.key)!))).map(d => [d._id, d.writes ?? {}]));
	const landed = open.filter(o => marks.get(bidxOf.get(o.key)!)?.[markOf(consumer, o.key)]).map(o => o.key);
	return { landed, notWritten: open.map(o => o.key).filter(k => !landed.includes(k)) };
}

beforeAll(async () => {
	mesh = await startReplicatedMesh({ name: "idem-kills-b", groups: ["api", "base-a", "base-b"], ready: false });
	// The nodes are up; the gateway may not know every service yet (503 until it does).
	const created = await eventually(() => fetch(`${mesh.bases[0]}/api/v1/consumers`, {
		method: "POST", body: JSON.stringify({ name: `kills-b-${randomUUID().slice(0, 8)}`, scopes: SCOPES, rateLimit: 100_000 }),
		headers: { authorization: `Bearer ${config.adminApiKey}`, "content-type": "application/json" }
	}).then(async r => ({ status: r.status, body: await r.json() })), r => r.status === 201, 60_000, 500);
	expect(created.status).toBe(201);
	const admin = created.body as { id: string; key: string };
	apiKey = admin.key;
	consumer = admin.id;
}, 240_000);
afterAll(async () => {
	await mesh?.stop();
});

describe("Idempotency-Key of a Base B write under kill -9 of the writing node", () => {
	it(`${ROUNDS} kills during bursts of ${PER_ROUND} profiles: no duplicate, nothing lost`, async () => {
		const keys = new Map<string, { cpf: string; bidx: string; status?: number }>();
		let retried = 0;
		let landedUnanswered = 0;
		let killedBeforeWrite = 0;
		for (let round = 0; round < ROUNDS; round++) {
			const batch = Array.from({ length: PER_ROUND }, (_, i) => {
				const cpf = randomCpf();
				return { idem: `kill-b-${round}-${i}-${randomUUID().slice(0, 6)}`, cpf, bidx: piiCipher().blindIndex(cpf) };
			});
			for (const b of batch) keys.set(b.idem, { cpf: b.cpf, bidx: b.bidx });
			// Sent a few milliseconds apart, so that at any moment some are before, at and after their write.
			const settled = batch.map((b, i) => sleep(i * 8).then(() => settle(b.cpf, b.idem)));
			const victim = mesh.replicas.find(r => r.group === "base-b" && r.index === round % 2)!;
			// At a random moment of the burst, the writes whose event intent exists are held at their next step
			// (confirming it; the intent's row is locked): they have written, or are writing, and have no answer.
			await sleep(50 + Math.floor(Math.random() * 200));
			const holder = new Client({ connectionString: config.postgresOwnerUrl });
			await holder.connect();
			try {
				await holder.query("BEGIN");
				// For 300 ms at least, each new intent is locked too (so more writes pile up in the window), then the
				// replica is killed once one of its writes is seen in Base B without its answer (after 3 s whatever the state).
				const from = Date.now();
				for (;;) {
					await holder.query("SELECT id FROM event_outbox WHERE namespace = $1 AND NOT ready FOR UPDATE SKIP LOCKED", [mesh.namespace]);
					if (Date.now() - from > 3000 || (Date.now() - from > 300 && (await inWindow(batch, victim.nodeID)).landed.length > 0)) break;
					await sleep(25);
				}
				await mesh.kill("base-b", round % 2);
				// Right after the kill (its claims are not taken over before the mesh knows it gone): which of its
				// claims have no answer, and of those, which writes are in Base B already — the window under test.
				await sleep(200);
				const window = await inWindow(batch, victim.nodeID);
				landedUnanswered += window.landed.length;
				killedBeforeWrite += window.notWritten.length;
			} finally {
				await holder.query("COMMIT").catch(() => undefined);
				await holder.end();
			}
			const results = await Promise.all(settled);
			results.forEach((r, i) => { keys.get(batch[i].idem)!.status = r.status; });
			retried += results.filter(r => r.attempts > 1).length;
			await mesh.restart("base-b", round % 2);
		}
		const bidxs = [...keys.values()].map(k => k.bidx);
		// Intents left by a killed write are settled by the relay after their grace (60 s): wait for none to be left.
		await eventually(
			() => ownerQuery("SELECT count(*)::int AS n FROM event_outbox WHERE namespace = $1 AND cpf_bidx = ANY($2) AND NOT ready", [mesh.namespace, bidxs]),
			rows => rows[0].n === 0, 180_000, 2000);
		const events = await ownerQuery<{ cpf_bidx: string; n: number }>(
			"SELECT cpf_bidx, count(*)::int AS n FROM event_outbox WHERE namespace = $1 AND cpf_bidx = ANY($2) AND type = 'profile.changed' AND ready GROUP BY cpf_bidx",
			[mesh.namespace, bidxs]);
		const eventsOf = new Map(events.map(e => [e.cpf_bidx.trim(), e.n]));
		const docs = new Map((await profiles(bidxs)).map(d => [d._id, Object.keys(d.writes ?? {})]));
		const stored = new Map((await ownerQuery<{ key: string; status: number }>(
			"SELECT key, status FROM idempotency_keys WHERE consumer_id = $1 AND key = ANY($2)", [consumer, [...keys.keys()]])).map(r => [r.key, r.status]));

		const entries = [...keys];
		const notCreated = entries.filter(([, k]) => k.status !== 201).map(([idem]) => idem);
		const duplicated = entries.filter(([, k]) => (eventsOf.get(k.bidx) ?? 0) > 1).map(([idem]) => idem);
		const lost = entries.filter(([, k]) => !docs.has(k.bidx) || (eventsOf.get(k.bidx) ?? 0) === 0).map(([idem]) => idem);
		console.log(`idempotency kills (Base B): ${keys.size} keys, ${retried} answered after more than one attempt, ${landedUnanswered} killed after their write and before their answer, ` +
			`${killedBeforeWrite} killed before their write; ${notCreated.length} answered as a replacement, ${duplicated.length} duplicated, ${lost.length} lost`);
		// Without a kill inside the window (write landed, answer not stored) this test would prove nothing.
		expect(landedUnanswered).toBeGreaterThan(0);
		expect(notCreated).toEqual([]);
		expect(duplicated).toEqual([]);
		expect(lost).toEqual([]);
		for (const [idem, k] of entries) {
			expect(docs.get(k.bidx)).toEqual([markOf(consumer, idem)]);
			expect(stored.get(idem)).toBe(201);
		}
	}, 900_000);
});
