import { natsOptions } from "../../config/nats";
import { connect } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatCpf, randomCpf } from "../../lib/cpf";
import { activitySubject } from "../support/keys";
import { channel } from "../../lib/mesh/streams";
import { config } from "../../config";
import { api, engines, eventually, startMesh, type Mesh } from "../support/mesh";
import { countMovements, withEs } from "../support/es";
import { bySubject, postNdjson, postTransactions } from "../support/transactions";

// transaction-ingest: POST /transactions answers 202 once the movements are durably in JetStream; its
// consumer writes them to Elasticsearch in bulk, each once. Reading them back is activity.test.ts's.
let mesh: Mesh;
beforeAll(async () => {
	mesh = await startMesh();
});
afterAll(async () => {
	await engines("up", "elasticsearch");
	await mesh?.stop();
});

describe("movements in", () => {
	it("counts the same batch sent twice once, and keeps two identical movements of one batch", async () => {
		const cpf = randomCpf();
		const batch = [{ cpf, tipo: "pix", valor: 5, data: "01/02/2025" }, { cpf, tipo: "pix", valor: 5, data: "01/02/2025" }, { cpf, tipo: "ted", valor: 7, data: "01/02/2025", id: "abc-1" }];
		expect((await postTransactions(mesh, batch)).status).toBe(202);
		expect((await postTransactions(mesh, batch)).status).toBe(202);
		expect((await postTransactions(mesh, [batch[2]])).status).toBe(202);
		await eventually(() => countMovements(bySubject(cpf)), n => n >= 3);
		await new Promise(r => setTimeout(r, 1500));
		expect(await countMovements(bySubject(cpf))).toBe(3);
	});

	it("stores no CPF anywhere in Base C", async () => {
		const cpf = randomCpf();
		const since = new Date(Date.now() - 1000).toISOString();
		await postTransactions(mesh, { cpf: formatCpf(cpf), tipo: "saque", valor: 100, data: "03/03/2025" });
		await api(mesh, "GET", `/api/v1/profiles/${cpf}`);
		await eventually(() => countMovements(bySubject(cpf)), n => n === 1);
		const dump = await withEs(async es => {
			await es.indices.refresh({ index: `${config.esIndexPrefix}-*` });
			// Every document written since this test began (other files leave more than one search returns).
			const recent = { bool: { should: [{ range: { received_at: { gte: since } } }, { range: { at: { gte: since } } }], minimum_should_match: 1 } };
			const res = await es.search({ index: `${config.esIndexPrefix}-*`, size: 10_000, query: recent });
			return JSON.stringify(res.hits.hits);
		});
		expect(dump).toContain(activitySubject(cpf));
		expect(dump).not.toContain(cpf);
		expect(dump).not.toContain(formatCpf(cpf));
	});
});

describe("bad input gets a 4xx and nothing is accepted", () => {
	const good = () => ({ cpf: randomCpf(), tipo: "pix", valor: 1, data: "01/01/2025" });
	const cases: [string, () => { body?: unknown; raw?: string; type?: string }, number][] = [
		["invalid CPF", () => ({ body: [good(), { ...good(), cpf: "52998224726" }] }), 422],
		["unknown tipo", () => ({ body: { ...good(), tipo: "bitcoin" } }), 422],
		["three-decimal valor", () => ({ body: { ...good(), valor: 1.001 } }), 422],
		["negative valor", () => ({ body: { ...good(), valor: -1 } }), 422],
		["impossible date", () => ({ body: { ...good(), data: "30/02/2025" } }), 422],
		["unknown field", () => ({ body: { ...good(), nome: "Fulano" } }), 422],
		["operator injection", () => ({ body: { ...good(), cpf: { $gt: "" } } }), 422],
		["a bad NDJSON line", () => ({ raw: [JSON.stringify(good()), "{not json", JSON.stringify(good())].join("\n"), type: "application/x-ndjson" }), 422],
		["an NDJSON line that is not an object", () => ({ raw: [JSON.stringify(good()), "[1,2]"].join("\n"), type: "application/x-ndjson" }), 422],
		["an empty array", () => ({ body: [] }), 422],
		["a JSON string", () => ({ raw: '"hello"', type: "application/json" }), 400],
		["text/plain", () => ({ raw: JSON.stringify(good()), type: "text/plain" }), 415],
		["a body of 50 MB", () => ({ raw: JSON.stringify(good()) + "\n" + " ".repeat(50 * 1024 * 1024), type: "application/x-ndjson" }), 413]
	];

	it.each(cases)("%s → %s", async (_name, make, status) => {
		const { body, raw, type } = make();
		const before = await countMovements();
		const res = raw !== undefined
			? await api(mesh, "POST", "/api/v1/transactions", { rawBody: raw, headers: { "content-type": type! } })
			: await postTransactions(mesh, body);
		expect(res.status).toBe(status);
		expect(res.body.code).toBe(status);
		await new Promise(r => setTimeout(r, 300));
		expect(await countMovements()).toBe(before);
	});

	it("reads junk NDJSON no further than its caps: past the line cap a 413 found while reading; under it, a 422 naming the first 100 bad lines", async () => {
		const post = (rawBody: string) => api(mesh, "POST", "/api/v1/transactions", { rawBody, headers: { "content-type": "application/x-ndjson" } });
		// 5.8 MB of junk lines: the gateway stops reading at line 10 001 and closes the connection.
		const huge = await post("x\n".repeat(2_900_000));
		expect(huge.status).toBe(413);
		expect(huge.body).toMatchObject({ code: 413, type: "TOO_MANY_MOVEMENTS", data: { max: config.ingestMaxMovements } });
		expect(huge.headers.get("connection")).toBe("close");
		const res = await post("x\n".repeat(5_000));
		expect(res.status).toBe(422);
		expect(res.body.data).toHaveLength(100);
		expect(res.body.data[99].index).toBe(99);
		const tooMany = Array.from({ length: 10_001 }, () => "{}").join("\n");
		expect((await api(mesh, "POST", "/api/v1/transactions", { rawBody: tooMany, headers: { "content-type": "application/x-ndjson" } })).status).toBe(413);
		// Blank lines are not movements: 10 000 of them around one movement pass the count.
		const padded = "\n \n".repeat(5_000) + JSON.stringify(good()) + "\n";
		expect((await post(padded)).status).toBe(202);
	});

	it("names every bad line by its index", async () => {
		const lines = [JSON.stringify(good()), "{oops", JSON.stringify({ ...good(), tipo: "x" }), JSON.stringify(good())];
		const res = await postNdjson(mesh, lines);
		expect(res.status).toBe(422);
		expect(res.body.data.map((e: any) => e.index)).toEqual([1, 2]);
		expect(JSON.stringify(res.body)).not.toMatch(/\d{11}/);
	});

	it("refuses more movements than a request may carry", async () => {
		const many = Array.from({ length: config.ingestMaxMovements + 1 }, () => JSON.stringify({ cpf: "52998224725", tipo: "pix", valor: 1, data: "01/01/2025" }));
		expect((await postNdjson(mesh, many)).status).toBe(413);
	});
});

describe("durability", () => {
	it("sends a poison message to the dead-letter stream with the reason", async () => {
		const nc = await connect(natsOptions());
		try {
			const js = nc.jetstream();
			await js.publish(channel(mesh.namespace, "transactions").subject, JSON.stringify({ records: [{ movement_id: "poison-1", subject: "s", tipo: "pix", valor_cents: "not a number", data: "2025-01-01" }] }));
			await js.publish(channel(mesh.namespace, "transactions").subject, "this is not JSON");
			const jsm = await nc.jetstreamManager();
			const dlq = channel(mesh.namespace, "deadLetters").name;
			const count = await eventually(async () => (await jsm.streams.info(dlq).catch(() => null))?.state.messages ?? 0, n => n >= 2, 20_000);
			expect(count).toBe(2);
			const first = JSON.parse((await jsm.streams.getMessage(dlq, { seq: 1 })).string());
			const second = JSON.parse((await jsm.streams.getMessage(dlq, { seq: 2 })).string());
			expect([first.reason, second.reason].join(" ")).toMatch(/parsing_exception/);
			expect([first.reason, second.reason]).toContain("not a movement batch");
		} finally {
			await nc.close();
		}
	});

	it("loses nothing it acknowledged when Elasticsearch stops in the middle of an ingest, and counts each movement once", async () => {
		const cpf = randomCpf();
		const batches = 30;
		const perBatch = 1000;
		let accepted = 0;
		for (let b = 0; b < batches; b++) {
			if (b === 8) await engines("down", "elasticsearch");
			if (b === 22) await engines("up", "elasticsearch");
			const lines = Array.from({ length: perBatch }, (_, i) => JSON.stringify({ cpf, tipo: i % 2 ? "pix" : "cartao", valor: 1.5, data: "2025-02-01", id: `b${b}-m${i}` }));
			// Resend the batch before Elasticsearch stopped too: a client retry must not double anything.
			const res = await postNdjson(mesh, lines);
			expect(res.status).toBe(202);
			accepted += res.body.accepted;
			if (b === 5) expect((await postNdjson(mesh, lines)).status).toBe(202);
		}
		expect(accepted).toBe(batches * perBatch);
		const count = await eventually(() => countMovements(bySubject(cpf)).catch(() => -1), n => n >= accepted, 120_000, 1000);
		expect(count).toBe(accepted);
		await new Promise(r => setTimeout(r, 2000));
		expect(await countMovements(bySubject(cpf))).toBe(accepted);
	}, 240_000);
});
