import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { stripVTControlCharacters } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { enginesEnv } from "../bench/lib/engines";
import { randomCpf } from "../lib/cpf";
import { operatorId } from "../middlewares/operator.middleware";
import { ownerQuery } from "./support/db";
import { api, eventually, type Mesh, startMesh } from "./support/mesh";
import { randomBytes } from "node:crypto";
import { config } from "../config";
import type { DataKey } from "../config/keys";
import { PiiCipher } from "../lib/pii";
import { piiCipher } from "./support/keys";
import { withMongo } from "./support/mongo";

/** `npm run repl` as a real process, fed through a pipe (its line-by-line mode), joined to the test mesh. */
class Repl {
	readonly child: ChildProcessWithoutNullStreams;
	readonly exited: Promise<number | null>;
	private stdout = "";
	private stderr = "";

	constructor(namespace: string) {
		// The operators' own settings: their NATS user and signing key only, as docs/repl.md has them kept.
		const env = { ...process.env, ...enginesEnv(process.cwd(), "test --group operators"), NAMESPACE: namespace };
		this.child = spawn(process.execPath, ["--import", "tsx", "scripts/repl.ts"], { env, stdio: "pipe" });
		this.child.stdout.on("data", d => (this.stdout += d));
		this.child.stderr.on("data", d => (this.stderr += d));
		this.exited = new Promise(resolve => this.child.on("exit", code => resolve(code)));
	}

	get out(): string {
		return stripVTControlCharacters(this.stdout);
	}

	/** Sends one command; resolves with the output written after it once `until` matches it. */
	async run(line: string, until: RegExp, ms = 30_000): Promise<string> {
		const from = this.out.length;
		this.child.stdin.write(`${line}\n`);
		const end = Date.now() + ms;
		while (!until.test(this.out.slice(from))) {
			if (Date.now() > end || this.child.exitCode !== null) {
				throw new Error(`repl: no ${until} after '${line}'\n--- stdout\n${this.out.slice(from)}\n--- stderr\n${this.stderr}`);
			}
			await new Promise(r => setTimeout(r, 100));
		}
		return this.out.slice(from);
	}

	/** Closes stdin: the REPL finishes and exits; its exit code, or a kill after `ms`. */
	async end(ms = 20_000): Promise<number | null> {
		this.child.stdin.end();
		const timer = setTimeout(() => this.child.kill("SIGKILL"), ms);
		try {
			return await this.exited;
		} finally {
			clearTimeout(timer);
		}
	}

	kill(): void {
		if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
	}
}

let mesh: Mesh;
const repls: Repl[] = [];

beforeAll(async () => {
	mesh = await startMesh();
}, 60_000);

afterAll(async () => {
	for (const r of repls) r.kill();
	await mesh?.stop();
});

describe("operators' REPL (npm run repl)", () => {
	it("issues a key that works on the gateway, revokes it (401), lists consumers, verifies the audit chain, shows health", async () => {
		const cpf = randomCpf();
		expect((await api(mesh, "POST", "/api/v1/persons", { body: { cpf, nome: "Cliente do Operador", endereco: "Rua R, 1" } })).status).toBe(201);

		const [{ head }] = await ownerQuery<{ head: string }>("SELECT coalesce(max(seq), 0)::text AS head FROM audit_log");
		const repl = new Repl(mesh.namespace);
		repls.push(repl);

		const issued = await repl.run("keys:issue partner persons:read --rate 50", /key:\s+\S+[\s\S]*shown only this once/);
		const id = /id:\s+([0-9a-f-]{36})/.exec(issued)![1];
		const key = /key:\s+(cm_\S+)/.exec(issued)![1];
		expect(issued).toMatch(/scopes:\s+persons:read\n/);
		expect(issued).toMatch(/rate:\s+50\/min/);

		const read = await api(mesh, "GET", `/api/v1/persons/${cpf}`, { key });
		expect(read.status, JSON.stringify(read.body)).toBe(200);
		expect(read.body.nome).toBe("Cliente do Operador");
		// The scopes are the key's own: a write is refused.
		expect((await api(mesh, "POST", "/api/v1/persons", { key, body: { cpf: randomCpf(), nome: "X", endereco: "Y" } })).status).toBe(403);

		const listed = await repl.run("keys:list", /consumer\(s\), \d+ active of \d+\./);
		expect(listed).toContain(id);

		expect(await repl.run(`keys:revoke ${id}`, /revoked|✖/)).toContain(`Consumer ${id} revoked`);
		const after = await eventually(() => api(mesh, "GET", `/api/v1/persons/${cpf}`, { key }), r => r.status === 401, 5_000);
		expect(after.status).toBe(401);

		const active = await repl.run("keys:list --active", /consumer\(s\), \d+ active of \d+\./);
		expect(active).not.toContain(id);
		// Options do not stick to the next run of a command.
		expect(await repl.run("keys:list", /consumer\(s\), \d+ active of \d+\./)).toContain(id);

		expect(await repl.run("audit:verify", /Audit chain (ok|BROKEN)/)).toMatch(/✔ Audit chain ok: \d+ rows, head seq \d+\./);

		const health = await repl.run("health", /Status[\s\S]*╚/);
		for (const action of ["audit.health", "profiles.health", "activity.health"]) expect(health).toMatch(new RegExp(`${action}\\s*│\\s*up\\b`));

		// Built-in commands run through the same evaluator, and their calls carry the operator too.
		expect(await repl.run("nodes", /╚/)).toMatch(/repl-[^\s]+-\d+ \(\*\)/);
		expect(await repl.run("call consumers.list", /Response:[\s\S]*\]\n/)).toContain(id);

		expect(await repl.end()).toBe(0);

		// The audit rows of these calls name the operator, not a node.
		const rows = await ownerQuery<{ consumer: string; action: string; outcome: string }>(
			"SELECT consumer, action, outcome FROM audit_log WHERE seq > $1 AND action LIKE 'consumers.%' ORDER BY seq", [head]
		);
		expect(rows.map(r => `${r.consumer} ${r.action}:${r.outcome}`)).toEqual(
			["create", "list", "revoke", "list", "list", "list"].map(a => `${operatorId()} consumers.${a}:ok`)
		);
	}, 90_000);

	it("lists webhook dead letters and sends one again", async () => {
		const [{ id: sub }] = await ownerQuery<{ id: string }>(
			"INSERT INTO webhook_subscriptions (id, consumer_id, url, event_types, secret_enc) VALUES (gen_random_uuid(), 'repl-test', 'https://hooks.invalid/x', '{erased}', 'v1.x.y') RETURNING id");
		const [{ id }] = await ownerQuery<{ id: string }>(
			`INSERT INTO webhook_deliveries (id, subscription_id, consumer_id, namespace, event_id, event_seq, event_type, event_at, cpf_bidx, data, status, attempts, last_error)
			 VALUES (gen_random_uuid(), $1, 'repl-test', $2, gen_random_uuid(), 0, 'erased', now() - interval '2 days', $3, '{}', 'dead', 30, 'ECONNREFUSED') RETURNING id`,
			[sub, `${mesh.namespace}-elsewhere`, "e".repeat(64)]);
		const repl = new Repl(mesh.namespace);
		repls.push(repl);
		expect(await repl.run("webhooks:dead", /dead letter\(s\)/)).toContain(id);
		expect(await repl.run(`webhooks:replay ${id}`, /pending again|✖/)).toContain(`Delivery ${id} is pending again.`);
		expect(await repl.run(`webhooks:replay ${id}`, /pending again|✖/)).toMatch(/✖ webhooks:replay: .*404/);
		const [row] = await ownerQuery("SELECT status, attempts FROM webhook_deliveries WHERE id = $1", [id]);
		expect(row).toEqual({ status: "pending", attempts: 0 });
		expect(await repl.end()).toBe(1);
		await ownerQuery("DELETE FROM webhook_subscriptions WHERE id = $1", [sub]);
	}, 60_000);

	it("refuses an unknown scope, lists the valid ones and exits non-zero", async () => {
		const repl = new Repl(mesh.namespace);
		repls.push(repl);
		const out = await repl.run("keys:issue partner persons:read nosuch:scope", /✖ keys:issue[\s\S]*scopes are: .*\n/);
		expect(out).toMatch(/ValidationError \(422\)/);
		expect(out).toContain("scopes are: persons:read persons:write");
		expect(out).not.toMatch(/key:\s+cm_/);
		expect(await repl.end()).toBe(1);
	}, 60_000);

	it("keys:reencrypt: every field of Bases A and B and the stored answers under a new key while writes go on; then the old key goes", async () => {
		const testKeys = config.piiKeys!;
		const newKey: DataKey = { id: `r${randomBytes(3).toString("hex")}`, key: randomBytes(32) };
		/** What a restart of every service with PII_KEYS = `keys` would do. */
		const useKeys = (keys: DataKey[]) => {
			for (const broker of mesh.brokers) for (const svc of broker.services as any[]) if (svc.pii instanceof PiiCipher) svc.pii = new PiiCipher(keys, config.blindIndexKey!);
		};
		const profile = (n: number) => ({ dataNascimento: "02/02/1982", endereco: `Rua K, ${n}`, fonteDeRenda: "Aposentado", bens: [] });
		const before = Array.from({ length: 30 }, () => randomCpf());
		for (const [i, c] of before.entries()) {
			expect((await api(mesh, "POST", "/api/v1/persons", { body: { cpf: c, nome: `Antes ${"abcdefghijklmnopqrstuvwxyz"[i % 26]}`, endereco: `Rua K, ${i}` } })).status).toBe(201);
			expect((await api(mesh, "PUT", `/api/v1/profiles/${c}`, { body: profile(i) })).status).toBe(201);
		}
		const idemKey = `reencrypt-${randomBytes(6).toString("hex")}`;
		const idemCpf = randomCpf();
		const first = await api(mesh, "POST", "/api/v1/persons", { body: { cpf: idemCpf, nome: "Resposta Guardada", endereco: "Rua I, 1" }, headers: { "idempotency-key": idemKey } });
		expect(first.status).toBe(201);
		const unreadable = await unreadableNow();

		useKeys([newKey, ...testKeys]);
		const repl = new Repl(mesh.namespace);
		repls.push(repl);
		// Writes keep coming while it runs, sealed under the new key by the services.
		let writing = true;
		const during: string[] = [];
		const load = (async () => {
			while (writing) {
				const c = randomCpf();
				if ((await api(mesh, "POST", "/api/v1/persons", { body: { cpf: c, nome: "Durante a Rotacao", endereco: "Rua D, 1" } })).status === 201) during.push(c);
				await api(mesh, "PUT", `/api/v1/profiles/${before[during.length % before.length]}`, { body: profile(during.length) });
			}
		})();
		const out = await repl.run("keys:reencrypt --batch 100", /✔ Every encrypted field|✖ /, 300_000);
		writing = false;
		await load;
		expect(out).toMatch(/Base A persons: \d+\/\d+ read, \d+ re-encrypted/);
		expect(out).toMatch(/Base A stored Idempotency answers: \d+\/\d+ read/);
		expect(out).toMatch(/Base B profiles: \d+\/\d+ read/);
		if (unreadable === 0) expect(out).toContain("✔ Every encrypted field is under the current key");
		else expect(out).toContain(`✖ ${unreadable} value(s) could not be opened`);
		expect(during.length).toBeGreaterThan(0);

		// The old key removed: everything written before, during and after reads back.
		useKeys([newKey]);
		try {
			for (const c of [...before, ...during]) {
				const res = await api(mesh, "GET", `/api/v1/persons/${c}`);
				expect(res.status, JSON.stringify(res.body)).toBe(200);
			}
			for (const c of before) expect((await api(mesh, "GET", `/api/v1/profiles/${c}`)).status).toBe(200);
			const replay = await api(mesh, "POST", "/api/v1/persons", { body: { cpf: idemCpf, nome: "Resposta Guardada", endereco: "Rua I, 1" }, headers: { "idempotency-key": idemKey } });
			expect(replay.status).toBe(201);
			expect(replay.body).toEqual(first.body);
			const bidxs = before.map(c => piiCipher().blindIndex(c));
			const rows = await ownerQuery<{ cpf_enc: string; nome_enc: string }>("SELECT cpf_enc, nome_enc FROM persons WHERE cpf_bidx = ANY($1)", [bidxs]);
			expect(rows).toHaveLength(before.length);
			for (const row of rows) expect([row.cpf_enc, row.nome_enc].map(v => v.split(".")[1])).toEqual([newKey.id, newKey.id]);
			// A stopped run goes on from the position it printed: here, the last table from its start.
			const resumed = await repl.run(`keys:reencrypt --resume ${Buffer.from(JSON.stringify({ at: 2, after: null })).toString("base64url")}`, /✔ Every encrypted field|✖ /, 120_000);
			expect(resumed).toMatch(/Base B profiles: \d+\/\d+ read, 0 re-encrypted/);
			expect(resumed).not.toContain("Base A");
		} finally {
			// Back under the test key for the files that follow (they start services with PII_KEYS alone).
			useKeys([...testKeys, newKey]);
			expect(await repl.run("keys:reencrypt --batch 500", /✔ Every encrypted field|✖ /, 300_000)).toMatch(unreadable === 0 ? /✔ Every encrypted field/ : /✔ Every encrypted field|✖ \d+ value\(s\)/);
			useKeys(testKeys);
		}
		expect(await repl.end()).toBe(unreadable === 0 ? 0 : 1);
	}, 600_000);
});

/** Values no key of the test's PII_KEYS opens (left by tests that swap ciphertexts on purpose): keys:reencrypt reports them. */
async function unreadableNow(): Promise<number> {
	const opens = (token: string, aad: string) => {
		try {
			piiCipher().decrypt(token, aad);
			return true;
		} catch {
			return false;
		}
	};
	const persons = await ownerQuery<Record<string, string>>("SELECT cpf_bidx, cpf_enc, nome_enc, endereco_enc FROM persons");
	const answers = await ownerQuery<Record<string, string>>("SELECT consumer_id, key, response_enc FROM idempotency_keys WHERE response_enc IS NOT NULL");
	const profiles = await withMongo(db => db.collection("profiles").find({}).toArray());
	return persons.filter(p => !["cpf", "nome", "endereco"].every(f => opens(p[`${f}_enc`], `persons.${f}:${p.cpf_bidx}`))).length
		+ answers.filter(a => !opens(a.response_enc, `idempotency:${a.consumer_id}:${a.key}`)).length
		+ profiles.filter(p => !["cpf", "endereco", "dataNascimento"].every(f => opens(p[`${f}_enc`], `profiles.${f}:${p._id}`))).length;
}
