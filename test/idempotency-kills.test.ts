// Exactly once under kill -9 (issue 17 item 1). The gateway and two base-a replicas run as in production
// (moleculer-runner processes over NATS). Round after round, a burst of debts is posted, each with its own
// Idempotency-Key, and one base-a replica is killed while they are in flight — some of its writes have
// committed and not answered yet — then started again under the same node id. Every client retries its
// key until it has its 201. Then, in Base A: one debt per key (no duplicate), every key's debt there
// (nothing lost), and every key answered with its own debt.
import { setTimeout as sleep } from "node:timers/promises";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomCpf } from "../lib/cpf";
import { SCOPES } from "../lib/scopes";
import { config } from "../config";
import { type ReplicatedMesh, startReplicatedMesh } from "./support/replicas";
import { ownerQuery } from "./support/db";
import { piiCipher } from "./support/keys";

const ROUNDS = 5;
const PER_ROUND = 40;
/** How long one key may take to get its answer: a claim of the killed node waits until the mesh knows it gone. */
const SETTLE_MS = 60_000;

let mesh: ReplicatedMesh;
let key = "";
const cpf = randomCpf();

async function post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
	const res = await fetch(`${mesh.bases[0]}/api/v1${path}`, {
		method: "POST", body: JSON.stringify(body), signal: AbortSignal.timeout(20_000),
		headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...headers }
	});
	const text = await res.text();
	return { status: res.status, body: text ? JSON.parse(text) : null };
}

/** Posts the debt of `idem` until it is answered 201; what it answered, and how many attempts it took. */
async function settle(idem: string): Promise<{ id: string; attempts: number; statuses: number[] }> {
	const until = Date.now() + SETTLE_MS;
	const statuses: number[] = [];
	for (;;) {
		const res = await post(`/persons/${cpf}/dividas`, { valor: 1.5, empresa: idem, dataVencimento: "01/06/2025" }, { "idempotency-key": idem })
			.catch(() => ({ status: 0, body: null }));
		statuses.push(res.status);
		if (res.status === 201) return { id: res.body.id, attempts: statuses.length, statuses };
		// Only a retry's answers may come before it: in progress (409), unavailable (503), a lost connection (0).
		if (![0, 409, 502, 503, 504].includes(res.status) || (res.status === 409 && res.body?.type !== "IDEMPOTENCY_IN_PROGRESS")) {
			throw new Error(`${idem}: unexpected ${res.status} ${JSON.stringify(res.body)}`);
		}
		if (Date.now() > until) throw new Error(`${idem}: no 201 within ${SETTLE_MS} ms (${statuses.join(",")})`);
		await sleep(300);
	}
}

beforeAll(async () => {
	mesh = await startReplicatedMesh({ name: "idem-kills", groups: ["api", "base-a"], ready: false });
	const admin = (await fetch(`${mesh.bases[0]}/api/v1/consumers`, {
		method: "POST", body: JSON.stringify({ name: `kills-${randomUUID().slice(0, 8)}`, scopes: SCOPES, rateLimit: 100_000 }),
		headers: { authorization: `Bearer ${config.adminApiKey}`, "content-type": "application/json" }
	}).then(r => r.json())) as { key: string };
	key = admin.key;
	expect((await post("/persons", { cpf, nome: "Mata Mata", endereco: "Rua K, 9" })).status).toBe(201);
}, 240_000);
afterAll(async () => {
	await mesh?.stop();
});

describe("Idempotency-Key under kill -9 of the writing node", () => {
	it(`${ROUNDS} kills during bursts of ${PER_ROUND} debts: no duplicate, nothing lost`, async () => {
		const answers = new Map<string, string>();
		let retried = 0;
		for (let round = 0; round < ROUNDS; round++) {
			const keys = Array.from({ length: PER_ROUND }, (_, i) => `kill-${round}-${i}-${randomUUID().slice(0, 6)}`);
			const settled = keys.map(settle);
			await sleep(10 + Math.floor(Math.random() * 60));
			await mesh.kill("base-a", round % 2);
			const results = await Promise.all(settled);
			results.forEach((r, i) => answers.set(keys[i], r.id));
			retried += results.filter(r => r.attempts > 1).length;
			await mesh.restart("base-a", round % 2);
		}
		const rows = await ownerQuery<{ empresa: string; id: string }>(
			"SELECT d.empresa, d.id::text FROM debts d JOIN persons p ON p.id = d.person_id WHERE p.cpf_bidx = $1", [piiCipher().blindIndex(cpf)]);
		const byKey = new Map<string, string[]>();
		for (const r of rows) byKey.set(r.empresa, [...(byKey.get(r.empresa) ?? []), r.id]);
		const duplicates = [...byKey].filter(([, ids]) => ids.length > 1);
		const lost = [...answers.keys()].filter(k => !byKey.has(k));
		console.log(`idempotency kills: ${answers.size} keys, ${rows.length} debts, ${retried} keys retried after a kill, ${duplicates.length} duplicated, ${lost.length} lost`);
		expect(duplicates).toEqual([]);
		expect(lost).toEqual([]);
		expect(rows).toHaveLength(ROUNDS * PER_ROUND);
		// Each key's answer names the debt that is stored for it.
		for (const [k, id] of answers) expect(byKey.get(k)).toEqual([id]);
	}, 600_000);
});
