import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatCpf, randomCpf } from "../../lib/cpf";
import { activitySubject } from "../support/keys";
import { api, engines, eventually, startMesh, type Mesh } from "../support/mesh";
import { countMovements } from "../support/es";
import { ownerQuery } from "../support/db";
import { piiCipher } from "../support/keys";
import { bySubject, postNdjson } from "../support/transactions";
import { EXPORT_MAX_MOVEMENTS } from "../../lib/base-c/activity-views";
import { EXPORT_MAX_AUDIT } from "../../services/privacy.service";
import { connect } from "nats";
import { Client } from "pg";
import { config, need } from "../../config";
import { natsOptions } from "../../config/nats";
import { channel } from "../../lib/mesh/streams";
import { withMongo } from "../support/mongo";

let mesh: Mesh;
beforeAll(async () => {
	mesh = await startMesh();
});
afterAll(async () => {
	await engines("up", "elasticsearch");
	await mesh?.stop();
});

/** A person present in all three bases. */
async function everywhere(): Promise<string> {
	const cpf = randomCpf();
	await api(mesh, "POST", "/api/v1/persons", { body: { cpf, nome: "Titular Dos Dados", endereco: "Rua N, 14" } });
	await api(mesh, "POST", `/api/v1/persons/${cpf}/dividas`, { body: { valor: 50, empresa: "Banco X", dataVencimento: "01/06/2025" } });
	await api(mesh, "PUT", `/api/v1/profiles/${cpf}`, { body: { dataNascimento: "02/02/1982", endereco: "Rua N, 14", fonteDeRenda: "Aposentado", bens: [{ tipo: "Casa", inicioPosse: "01/01/2000", quitado: true }] } });
	await api(mesh, "POST", "/api/v1/transactions", { body: [{ cpf, tipo: "cartao", valor: 12.34, data: "03/03/2025" }, { cpf, tipo: "pix", valor: 1, data: "04/03/2025" }] });
	await api(mesh, "GET", `/api/v1/persons/${cpf}`);
	await eventually(() => api(mesh, "GET", `/api/v1/activity/${cpf}`), r => r.status === 200 && r.body.movimentacaoFinanceira.length === 2 && r.body.ultimaConsulta !== null);
	return cpf;
}

describe("who consulted a CPF (GET /consultations/:cpf)", () => {
	it("lists consumer name, purpose and date, newest first, paged; audited; not itself a consultation", async () => {
		const cpf = randomCpf();
		await api(mesh, "POST", "/api/v1/persons", { body: { cpf, nome: "Consultada Por Muitos", endereco: "Rua C, 3" } });
		const keys = await Promise.all(["Banco Alfa", "Financeira Beta"].map(async name => (await api(mesh, "POST", "/api/v1/consumers", { body: { name, scopes: ["persons:read", "consultations:read"] } })).body));
		const stated = [[0, "concessao_credito"], [1, "prevencao_fraude"], [0, "revisao_limite"]] as const;
		for (const [k, finalidade] of stated) {
			expect((await api(mesh, "GET", `/api/v1/persons/${cpf}`, { key: keys[k].key, finalidade })).status).toBe(200);
			await new Promise(r => setTimeout(r, 5)); // distinct instants, so the order is the order of the calls
		}
		const list = () => api(mesh, "GET", `/api/v1/consultations/${formatCpf(cpf)}`, { finalidade: null });
		const all = await eventually(list, r => r.status === 200 && r.body.total === 3);
		expect(all.body.cpf).toBe(cpf);
		expect(all.body.consultations.map((c: any) => [c.consumer.name, c.purpose])).toEqual([
			["Banco Alfa", "revisao_limite"], ["Financeira Beta", "prevencao_fraude"], ["Banco Alfa", "concessao_credito"]
		]);
		expect(all.body.consultations[0].consumer.id).toBe(keys[0].id);
		expect(all.body.next).toBeNull();

		// Paged; reading the list adds no consultation.
		const first = await api(mesh, "GET", `/api/v1/consultations/${cpf}?size=2`, { finalidade: null });
		expect(first.body.consultations).toHaveLength(2);
		const second = await api(mesh, "GET", `/api/v1/consultations/${cpf}?size=2&after=${first.body.next}`, { finalidade: null });
		expect(second.body.consultations.map((c: any) => c.purpose)).toEqual(["concessao_credito"]);
		await new Promise(r => setTimeout(r, 1000));
		expect((await list()).body.total).toBe(3);

		// Audited under its own name; its own scope; bad input is 422.
		const [{ count }] = await ownerQuery("SELECT count(*)::int AS count FROM audit_log WHERE action = 'privacy.consultations' AND cpf_bidx = $1", [piiCipher().blindIndex(cpf)]);
		expect(count).toBeGreaterThanOrEqual(4);
		const reader = (await api(mesh, "POST", "/api/v1/consumers", { body: { name: "so leitura", scopes: ["persons:read"] } })).body.key;
		expect((await api(mesh, "GET", `/api/v1/consultations/${cpf}`, { key: reader })).status).toBe(403);
		expect((await api(mesh, "GET", `/api/v1/consultations/${cpf}?size=201`)).status).toBe(422);
		expect((await api(mesh, "GET", `/api/v1/consultations/${cpf}?after=bm90LWEtY3Vyc29y`)).status).toBe(422);
		expect((await api(mesh, "GET", "/api/v1/consultations/12345678900")).status).toBe(422);
		expect(await api(mesh, "GET", `/api/v1/consultations/${randomCpf()}`)).toMatchObject({ status: 200, body: { total: 0, consultations: [], next: null } });
	});
});

describe("LGPD access", () => {
	it("returns everything held on the CPF in all three bases, with its audit trail", async () => {
		const cpf = await everywhere();
		const res = await api(mesh, "GET", `/api/v1/privacy/${formatCpf(cpf)}`);
		expect(res.status).toBe(200);
		expect(res.body.cpf).toBe(cpf);
		expect(res.body.baseA).toMatchObject({ cpf, nome: "Titular Dos Dados", dividas: [{ valor: 50, empresa: "Banco X" }] });
		expect(res.body.baseB).toMatchObject({ cpf, fonteDeRenda: "Aposentado", bens: [{ tipo: "Casa" }] });
		expect(res.body.baseC.movements).toHaveLength(2);
		expect(res.body.baseC.consultations.length).toBeGreaterThanOrEqual(1);
		// Each consultation with who (named from Base A) and why.
		expect(res.body.baseC.consultations[0]).toMatchObject({ purpose: "concessao_credito", consumer: { id: "00000000-0000-4000-8000-000000000001", name: "bootstrap-admin" } });
		expect(Date.parse(res.body.baseC.consultations[0].at)).toBeGreaterThan(Date.now() - 600_000);
		expect(res.body.audit.map((e: any) => e.action)).toEqual(expect.arrayContaining(["persons.create", "debt-write.create", "profiles.put", "cpf-lookup.get"]));
		expect((await api(mesh, "GET", `/api/v1/privacy/${cpf}`, { key: (await api(mesh, "POST", "/api/v1/consumers", { body: { name: "sem privacidade", scopes: ["persons:read"] } })).body.key })).status).toBe(403);
	});

	it("is bounded to what one message carries, and says where the movements and the audit trail continue", async () => {
		const cpf = randomCpf();
		const n = EXPORT_MAX_MOVEMENTS + 1;
		const day = (i: number) => new Date(Date.UTC(2024, 0, 1 + (i % 700))).toISOString().slice(0, 10).split("-").reverse().join("/");
		const lines = Array.from({ length: n }, (_, i) => JSON.stringify({ cpf, tipo: "pix", valor: Number((1 + i / 100).toFixed(2)), data: day(i) }));
		for (let i = 0; i < n; i += 5000) {
			const posted = await postNdjson(mesh, lines.slice(i, i + 5000));
			expect(posted.status, JSON.stringify(posted.body).slice(0, 300)).toBe(202);
		}
		expect(await eventually(() => countMovements(bySubject(cpf)), c => c === n, 120_000, 500)).toBe(n);
		// More audit rows than one export carries, appended to the keyed chain by the audit service.
		const audit = mesh.broker("audit");
		const bidx = piiCipher().blindIndex(cpf);
		for (let i = 0; i <= EXPORT_MAX_AUDIT; i += 500) {
			await Promise.all(Array.from({ length: Math.min(500, EXPORT_MAX_AUDIT + 1 - i) }, () => audit.call("audit.append", { action: "cpf-lookup.get", cpfBidx: bidx, outcome: "ok" })));
		}

		const res = await api(mesh, "GET", `/api/v1/privacy/${cpf}`);
		expect(res.status).toBe(200);
		expect(res.body.baseC.movements).toHaveLength(EXPORT_MAX_MOVEMENTS);
		expect(res.body.baseC.movementsTotal).toBe(n);
		const rest = await api(mesh, "GET", `/api/v1/activity/${cpf}/movements?after=${res.body.baseC.movementsNext}&size=100`);
		expect(rest.status).toBe(200);
		expect(rest.body.movements).toHaveLength(1);
		expect(rest.body.next).toBeNull();
		expect(res.body.audit).toHaveLength(EXPORT_MAX_AUDIT);
		expect(res.body.auditNext).toBe(res.body.audit[EXPORT_MAX_AUDIT - 1].seq);
		const more = await api(mesh, "GET", `/api/v1/audit?cpf=${cpf}&after=${res.body.auditNext}`);
		expect(more.body.entries.map((e: any) => e.consumer)).toContain("group:unknown");
	}, 240_000);
});

describe("LGPD erasure", () => {
	it("erases the CPF from all three bases, is idempotent, and keeps the act (not the data) in the audit", async () => {
		const cpf = await everywhere();
		const res = await api(mesh, "DELETE", `/api/v1/privacy/${cpf}`);
		expect(res.status).toBe(200);
		expect(res.body).toEqual({ cpf, status: "erased", bases: { A: "erased", B: "erased", C: "erased" } });

		expect((await api(mesh, "GET", `/api/v1/persons/${cpf}`)).status).toBe(404);
		expect((await api(mesh, "GET", `/api/v1/profiles/${cpf}`)).status).toBe(404);
		expect(await countMovements({ term: { subject: activitySubject(cpf) } })).toBe(0);
		const after = await api(mesh, "GET", `/api/v1/privacy/${cpf}`);
		expect(after.body).toMatchObject({ baseA: null, baseB: null, baseC: { movements: [], consultations: [] } });
		expect(after.body.audit.filter((e: any) => e.action === "privacy.erase").map((e: any) => e.outcome)).toEqual(["requested", "ok"]);

		const again = await api(mesh, "DELETE", `/api/v1/privacy/${cpf}`);
		expect(again.status).toBe(200);
		expect(again.body.status).toBe("erased");
	});

	it("erases the stored answers of the person's writes, and the sweeper removes expired ones", async () => {
		const cpf = randomCpf();
		const key = `erase-${cpf}`;
		expect((await api(mesh, "POST", "/api/v1/persons", { body: { cpf, nome: "Resposta Guardada", endereco: "Rua R, 1" }, headers: { "idempotency-key": key } })).status).toBe(201);
		expect((await api(mesh, "PUT", `/api/v1/profiles/${cpf}`, { body: { dataNascimento: "02/02/1982", endereco: "Rua R, 1", fonteDeRenda: "Aposentado", bens: [] }, headers: { "idempotency-key": `${key}-b` } })).status).toBe(201);
		const stored = () => ownerQuery("SELECT key FROM idempotency_keys WHERE key LIKE $1", [`${key}%`]);
		expect(await stored()).toHaveLength(2);
		expect((await api(mesh, "DELETE", `/api/v1/privacy/${cpf}`)).status).toBe(200);
		expect(await stored()).toEqual([]);

		const old = `old-${randomCpf()}`;
		await ownerQuery("INSERT INTO idempotency_keys (consumer_id, key, action, fingerprint, created_at) VALUES ('c', $1, 'persons.create', 'f', now() - interval '25 hours')", [old]);
		expect(await (mesh.broker("idempotency").getLocalService("idempotency") as any).sweep()).toBeGreaterThanOrEqual(1);
		expect(await ownerQuery("SELECT key FROM idempotency_keys WHERE key = $1", [old])).toEqual([]);
	});

	it("survives a base being down mid-way: 202 pending, never success early, finished when the base is back", async () => {
		const cpf = await everywhere();
		await engines("down", "elasticsearch");
		const res = await api(mesh, "DELETE", `/api/v1/privacy/${cpf}`);
		expect(res.status).toBe(202);
		expect(res.body).toEqual({ cpf, status: "pending", bases: { A: "erased", B: "erased", C: "pending" } });
		expect((await api(mesh, "GET", `/api/v1/persons/${cpf}`)).status).toBe(404);
		expect((await api(mesh, "GET", `/api/v1/privacy/${cpf}`)).status).toBe(503);

		await engines("up", "elasticsearch");
		// No client action: the durable erasure request is finished by the privacy service's consumer.
		const done = await eventually(() => countMovements({ term: { subject: activitySubject(cpf) } }).catch(() => -1), n => n === 0, 90_000, 1000);
		expect(done).toBe(0);
		const trail = await eventually(() => api(mesh, "GET", `/api/v1/privacy/${cpf}`), r => r.status === 200 && r.body.audit.some((e: any) => e.action === "privacy.erase" && e.outcome === "ok"), 60_000, 1000);
		expect(trail.body).toMatchObject({ baseA: null, baseB: null, baseC: { movements: [], consultations: [] } });
	}, 180_000);
});

describe("erasure that stays done (docs/erasure.md)", () => {
	/** Stops the movements' consumer of the transaction-writer node (transaction-ingest keeps taking requests); returns its restart. */
	async function pauseMovementWriter(): Promise<() => void> {
		const broker = mesh.broker("transaction-writer");
		const service = broker.getLocalService("transaction-writer");
		const link = broker.channels as unknown as { consumers: Map<unknown, { stop(): Promise<void> }[]>; consume(s: unknown, k: string, spec: unknown): { stop(): Promise<void> } };
		for (const c of link.consumers.get(service) ?? []) await c.stop();
		return () => link.consumers.set(service, [link.consume(service, "transactions", (service.schema as any).channels.transactions)]);
	}

	it("drops the 5 000 movements still queued and the dead letters of an erased CPF, then records what comes after as new", async () => {
		const cpf = await everywhere();
		const subject = activitySubject(cpf);
		const resume = await pauseMovementWriter();
		const nc = await connect(natsOptions());
		try {
			const lines = Array.from({ length: 5000 }, (_, i) => JSON.stringify({ cpf, tipo: i % 2 ? "pix" : "cartao", valor: Number((1 + i / 100).toFixed(2)), data: "2025-02-01", id: `queued-${i}` }));
			expect((await postNdjson(mesh, lines)).status).toBe(202);
			// A dead letter of the person, as the writer parks a movement Elasticsearch refused.
			await mesh.broker("transaction-writer").channels.publish("deadLetters", { reason: "test", payload: subject }, undefined, subject);
			const jsm = await nc.jetstreamManager();
			const queue = channel(mesh.namespace, "transactions");
			const dlq = channel(mesh.namespace, "deadLetters");
			expect((await jsm.streams.info(queue.name)).state.messages).toBe(5);
			const deadOf = async () => (await jsm.streams.info(dlq.name, { subjects_filter: `${dlq.subject}.${subject}` })).state.subjects?.[`${dlq.subject}.${subject}`] ?? 0;
			expect(await deadOf()).toBe(1);

			const erased = await api(mesh, "DELETE", `/api/v1/privacy/${cpf}`);
			expect(erased.body).toEqual({ cpf, status: "erased", bases: { A: "erased", B: "erased", C: "erased" } });
			expect(await deadOf()).toBe(0);

			resume();
			// Delivered and dropped: the work queue empties, and not one of them reached Base C.
			expect(await eventually(async () => (await jsm.streams.info(queue.name)).state.messages, n => n === 0, 60_000, 250)).toBe(0);
			expect(await countMovements(bySubject(cpf))).toBe(0);
			expect((await api(mesh, "GET", `/api/v1/activity/${cpf}`)).status).toBe(404);

			// After the erasure, the same person is a new record in every base.
			expect((await api(mesh, "POST", "/api/v1/persons", { body: { cpf, nome: "Nova Ficha", endereco: "Rua Nova, 1" } })).status).toBe(201);
			expect((await api(mesh, "POST", `/api/v1/persons/${cpf}/dividas`, { body: { valor: 77, empresa: "Banco Novo", dataVencimento: "01/07/2025" } })).status).toBe(201);
			const person = await api(mesh, "GET", `/api/v1/persons/${cpf}`);
			expect(person.body).toMatchObject({ nome: "Nova Ficha", dividas: [{ valor: 77, empresa: "Banco Novo" }] });
			expect(person.body.dividas).toHaveLength(1);
			expect((await api(mesh, "POST", "/api/v1/transactions", { body: { cpf, tipo: "pix", valor: 5, data: "05/03/2025", id: "after-erasure" } })).status).toBe(202);
			expect(await eventually(() => countMovements(bySubject(cpf)), n => n === 1, 30_000)).toBe(1);
		} finally {
			await nc.close();
		}
	}, 180_000);

	it("refuses a Base A write that began before the erasure and waited for it, and takes the next one as new", async () => {
		const cpf = randomCpf();
		const bidx = piiCipher().blindIndex(cpf);
		// An erasure in progress: it holds the CPF's lock while the write starts.
		const eraser = new Client({ connectionString: need(config, "postgresOwnerUrl") });
		await eraser.connect();
		try {
			await eraser.query("BEGIN");
			await eraser.query("SELECT pg_advisory_xact_lock(hashtextextended('credit-mesh-cpf:' || $1, 0))", [bidx]);
			const write = api(mesh, "POST", "/api/v1/persons", { body: { cpf, nome: "Em Voo", endereco: "Rua V, 2" } });
			await eventually(() => eraser.query("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"), r => r.rows[0].n >= 1, 10_000, 50);
			await eraser.query("INSERT INTO erasures (cpf_bidx, erased_at) VALUES ($1, clock_timestamp()) ON CONFLICT (cpf_bidx) DO UPDATE SET erased_at = EXCLUDED.erased_at", [bidx]);
			await eraser.query("COMMIT");
			const refused = await write;
			expect(refused.status).toBe(409);
			expect(refused.body.type).toBe("ERASED_MEANWHILE");
			expect(JSON.stringify(refused.body)).not.toContain(cpf);
		} finally {
			await eraser.end();
		}
		expect((await api(mesh, "GET", `/api/v1/persons/${cpf}`)).status).toBe(404);
		expect((await api(mesh, "POST", "/api/v1/persons", { body: { cpf, nome: "Depois", endereco: "Rua V, 3" } })).status).toBe(201);
	});

	it("undoes a Base B write an erasure overtook, and takes a write after the erasure", async () => {
		const cpf = randomCpf();
		const bidx = piiCipher().blindIndex(cpf);
		const profile = { dataNascimento: "02/02/1982", endereco: "Rua B, 9", fonteDeRenda: "Aposentado", bens: [] };
		// An erasure dated after the write's acceptance (as if it ran while the write was in flight).
		await withMongo(db => db.collection<{ _id: string; erasedAt: Date }>("erasures").updateOne({ _id: bidx }, { $set: { erasedAt: new Date(Date.now() + 60_000) } }, { upsert: true }));
		const refused = await api(mesh, "PUT", `/api/v1/profiles/${cpf}`, { body: profile });
		expect(refused.status).toBe(409);
		expect(refused.body.type).toBe("ERASED_MEANWHILE");
		expect((await api(mesh, "GET", `/api/v1/profiles/${cpf}`)).status).toBe(404);
		await withMongo(db => db.collection<{ _id: string; erasedAt: Date }>("erasures").updateOne({ _id: bidx }, { $set: { erasedAt: new Date(Date.now() - 1000) } }));
		expect((await api(mesh, "PUT", `/api/v1/profiles/${cpf}`, { body: profile })).status).toBe(201);
		expect((await api(mesh, "GET", `/api/v1/profiles/${cpf}`)).status).toBe(200);
	});
});
