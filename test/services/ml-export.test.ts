import { setFlagsFromString } from "node:v8";
import { setTimeout as sleep } from "node:timers/promises";
import { runInNewContext } from "node:vm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatCpf, randomCpf } from "../../lib/cpf";
import { piiCipher } from "../support/keys";
import { PROFILES } from "../../mixins/base-b.mixin";
import { ASSET_TYPES, INCOME_SOURCES } from "../../lib/base-b/catalog";
import { api, eventually, startMesh, type Mesh } from "../support/mesh";
import { withMongo } from "../support/mongo";
import { seedPayloadB } from "../support/profiles";
import { natsCounters, trafficBetween } from "../../bench/lib/nats-traffic";

const COUNT = 100_000;
let mesh: Mesh;

// 100 000 random CPFs out of 10⁹ collide a few times (birthday paradox): keep them unique, and apart
// from the profiles other test files left in the collection (a few thousand after test/faults.test.ts:
// one collision in ten runs).
const used = new Set<string>();
const taken = new Set<string>();
function uniqueCpf(): string {
	for (;;) {
		const cpf = randomCpf();
		if (!used.has(cpf) && !taken.has(piiCipher().blindIndex(cpf))) return used.add(cpf), cpf;
	}
}

/** Profiles sealed exactly as the profiles service seals them, inserted with the raw driver for speed. */
function profileDoc(i: number) {
	const pii = piiCipher();
	const cpf = uniqueCpf();
	const _id = pii.blindIndex(cpf);
	const seal = (field: string, value: string) => pii.encrypt(value, `profiles.${field}:${_id}`);
	const birth = `19${50 + (i % 50)}-0${1 + (i % 9)}-1${i % 10}`;
	return {
		_id, cpf_enc: seal("cpf", cpf), endereco_enc: seal("endereco", `Rua ${i}`), dataNascimento_enc: seal("dataNascimento", birth),
		fonteDeRenda: INCOME_SOURCES[i % INCOME_SOURCES.length],
		bens: Array.from({ length: i % 4 }, (_, k) => ({ tipo: ASSET_TYPES[(i + k) % ASSET_TYPES.length], inicioPosse: `20${10 + k}-06-01`, quitado: k % 2 === 0 })),
		createdAt: new Date(), updatedAt: new Date()
	};
}

beforeAll(async () => {
	mesh = await startMesh();
});
afterAll(async () => {
	await mesh?.stop();
});

/** Live heap after a full collection: what the process really holds at that moment. */
function retainedHeap(): number {
	setFlagsFromString("--expose-gc");
	(runInNewContext("gc") as () => void)();
	return process.memoryUsage().heapUsed;
}



describe("the ML export", () => {
	it("streams one pseudonymised row per profile, with no identifier", async () => {
		const cpfs = [randomCpf(), randomCpf(), randomCpf()];
		for (const cpf of cpfs) await api(mesh, "PUT", `/api/v1/profiles/${cpf}`, { body: { ...seedPayloadB, endereco: `Rua Rastreavel ${cpf.slice(0, 3)}` } });
		const res = await fetch(`${mesh.url}/api/v1/ml/features`, { headers: { authorization: `Bearer ${mesh.adminKey}` } });
		expect(res.status).toBe(200);
		expect(res.headers.get("content-type")).toContain("application/x-ndjson");
		const text = await res.text();
		const rows = text.trim().split("\n").map(l => JSON.parse(l));
		const total = await withMongo(db => db.collection("profiles").countDocuments({}));
		expect(rows).toHaveLength(total);
		expect(Object.keys(rows[0]).sort()).toEqual(["anosPosseMax", "anosPosseMedia", "band", "bensFinanceiros", "bensImoveis", "bensOutros", "bensQuitados", "bensTotal", "bensVeiculos", "creditBand", "creditComponents", "creditComputedAt", "creditModel", "creditScore", "fonteDeRenda", "idade", "score", "subject"]);
		const ids = await withMongo(async db => (await db.collection("profiles").find({}, { projection: { _id: 1 } }).toArray()).map(d => String(d._id)));
		for (const secret of [...cpfs, ...cpfs.map(formatCpf), "Rastreavel", "1986", "10/05", ...ids]) expect(text).not.toContain(secret);
		expect(new Set(rows.map(r => r.subject)).size).toBe(rows.length);
		// Stable between exports, so a model can join its own runs.
		const again = (await (await fetch(`${mesh.url}/api/v1/ml/features`, { headers: { authorization: `Bearer ${mesh.adminKey}` } })).text()).trim().split("\n").map(l => JSON.parse(l).subject);
		expect(new Set(again)).toEqual(new Set(rows.map(r => r.subject)));
	});
});

describe("ML export at scale", () => {
	beforeAll(async () => {
		await withMongo(async db => {
			const col = db.collection(PROFILES);
			for await (const doc of col.find({}, { projection: { _id: 1 } })) taken.add(String(doc._id));
			for (let start = 0; start < COUNT; start += 2000) {
				const batch = Array.from({ length: 2000 }, (_, k) => profileDoc(start + k));
				await col.insertMany(batch as any[], { ordered: false });
			}
		});
	}, 600_000);

	afterAll(async () => {
		// Deleting 100 000 documents one filter at a time is slow on FerretDB; the test database is ours alone.
		await withMongo(db => db.collection(PROFILES).drop());
	}, 120_000);

	it(`streams ${COUNT} profiles with memory that does not grow with them`, async () => {
		const res = await fetch(`${mesh.url}/api/v1/ml/features`, { headers: { authorization: `Bearer ${mesh.adminKey}` } });
		expect(res.status).toBe(200);
		let rows = 0;
		let bytes = 0;
		let tail = "";
		let atQuarter = 0;
		let atNinetyPercent = 0;
		const decoder = new TextDecoder();
		for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
			bytes += chunk.length;
			const text = tail + decoder.decode(chunk, { stream: true });
			const lines = text.split("\n");
			tail = lines.pop()!;
			for (const line of lines) {
				if (rows === 0) expect(Object.keys(JSON.parse(line))).toContain("subject");
				rows++;
				// The service, the gateway and this client share the process: compare what stays alive.
				if (rows === COUNT / 4) atQuarter = retainedHeap();
				if (rows === (COUNT * 9) / 10) atNinetyPercent = retainedHeap();
			}
		}

		expect(rows).toBeGreaterThanOrEqual(COUNT);
		const grewMb = (atNinetyPercent - atQuarter) / 2 ** 20;
		console.log(`ml export: ${rows} rows, ${(bytes / 2 ** 20).toFixed(1)} MiB streamed; live heap from 25 % to 90 % of the rows: ${grewMb >= 0 ? "+" : ""}${grewMb.toFixed(1)} MiB`);
		// Holding the rows between those two points would keep about 0.65 × the bytes streamed (16 MiB) alive.
		expect(grewMb).toBeLessThan(8);
	}, 600_000);

	it("closes the export's cursor on Base B when the client hangs up, and after the last page", async () => {
		const exportsOpen = () => (mesh.broker("ml-export").getLocalService("ml-export") as unknown as { open: Map<string, unknown> }).open.size;
		const hangUp = new AbortController();
		const res = await fetch(`${mesh.url}/api/v1/ml/features`, { headers: { authorization: `Bearer ${mesh.adminKey}` }, signal: hangUp.signal });
		const reader = res.body!.getReader();
		await reader.read();
		expect(exportsOpen()).toBe(1);
		hangUp.abort();
		// Closed by the gateway's ml-export.close, long before the 60 s idle timeout would.
		expect(await eventually(async () => exportsOpen(), n => n === 0, 10_000, 100)).toBe(0);
		// A whole export closes its cursor with its last page.
		await (await fetch(`${mesh.url}/api/v1/ml/features`, { headers: { authorization: `Bearer ${mesh.adminKey}` } })).text();
		expect(exportsOpen()).toBe(0);
	}, 120_000);

	// Found in issue 15: a stream pushed over NATS has no back-pressure between nodes: Base B went on sending
	// the export at full speed while its client read nothing. The export is now pulled a page at a time.
	it("sends nothing over NATS while its client does not read, once the sockets' buffers are full", async () => {
		const res = await fetch(`${mesh.url}/api/v1/ml/features`, { headers: { authorization: `Bearer ${mesh.adminKey}` } });
		expect(res.status).toBe(200);
		const reader = res.body!.getReader();
		const decoder = new TextDecoder();
		const firstChunk = (await reader.read()).value!;
		let newlines = decoder.decode(firstChunk, { stream: true }).replace(/[^\n]/g, "");
		// The client reads nothing for 10 s. The first seconds fill the sockets' buffers (a few MiB on loopback);
		// the last five are measured on the NATS server: only heartbeats should cross it then.
		await sleep(5000);
		const before = await natsCounters();
		await sleep(5000);
		const paused = trafficBetween(before, await natsCounters());
		for (;;) {
			const { value, done } = await reader.read();
			if (done) break;
			newlines += decoder.decode(value, { stream: true }).replace(/[^\n]/g, "");
		}
		expect(paused, "the NATS server's monitoring port (8222) answers").not.toBeNull();
		console.log(`ml export, client paused: ${((paused!.inBytes) / 2 ** 20).toFixed(2)} MiB through NATS from its 5th to its 10th second; then all ${newlines.length} rows read`);
		expect(newlines.length).toBeGreaterThanOrEqual(COUNT);
		// Pushed, about 1 MiB a second crossed NATS (35 MiB in all), whatever the client did.
		expect(paused!.inBytes).toBeLessThan(2 ** 20);
	}, 600_000);
});
