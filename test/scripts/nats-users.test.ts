import { randomBytes } from "node:crypto";
import { connect as tcpConnect } from "node:net";
import { connect, RetentionPolicy, StorageType, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { enginesEnv } from "../../bench/lib/engines";
import { config, loadConfig } from "../../config";
import { natsOptions } from "../../config/nats";
import { channel } from "../../lib/mesh/streams";

// The local NATS of scripts/engines.sh as the stack runs it: TLS only, one user per service group,
// JetStream's API only for the groups that own streams (docs/security.md).
const ROOT = process.cwd();
const namespace = `test-nats-${randomBytes(3).toString("hex")}`;
const transactions = channel(namespace, "transactions");
const consultations = channel(namespace, "consultations");
let owner: NatsConnection;

/** A connection as the NATS user of `group`, with its settings from `engines.sh env test --group`. */
function asGroup(group: string): Promise<NatsConnection> {
	const cfg = loadConfig({ ...process.env, ...enginesEnv(ROOT, `test --group ${group}`), MESH_KEYS: "" });
	return connect({ ...natsOptions(cfg), name: `nats-users-test-${group}`, maxReconnectAttempts: 0 });
}

const count = async (stream: string) => (await (await owner.jetstreamManager()).streams.info(stream)).state.messages;

beforeAll(async () => {
	owner = await asGroup("base-c");
	const jsm = await owner.jetstreamManager();
	for (const ch of [transactions, consultations]) {
		await jsm.streams.add({ name: ch.name, subjects: [ch.subject], retention: RetentionPolicy.Workqueue, storage: StorageType.Memory, max_bytes: 1024 * 1024 });
	}
	// Movements come from base-c-front alone (it holds the pseudonym key; base-c, the stream's owner, publishes none).
	const front = await asGroup("base-c-front");
	await front.jetstream().publish(transactions.subject, JSON.stringify({ records: [] }));
	await front.close();
});
afterAll(async () => {
	const jsm = await owner?.jetstreamManager();
	for (const ch of [transactions, consultations]) await jsm?.streams.delete(ch.name).catch(() => false);
	await owner?.close();
});

describe("NATS: who may connect", () => {
	it("refuses a client without credentials", async () => {
		await expect(connect({ ...natsOptions(), user: undefined, pass: undefined, maxReconnectAttempts: 0 })).rejects.toThrow(/AUTHORIZATION_VIOLATION|Authorization/i);
	});

	it("refuses a client that does not speak TLS, even with a valid password", async () => {
		const { servers, user, pass } = natsOptions();
		const [host, port] = String((servers as string[])[0]).split(":");
		const said = await new Promise<string>((resolve, reject) => {
			let text = "";
			const socket = tcpConnect(Number(port), host, () => socket.write(`CONNECT ${JSON.stringify({ user, pass, verbose: false, tls_required: false })}\r\nPING\r\n`));
			socket.on("data", d => (text += d.toString()));
			socket.on("close", () => resolve(text));
			socket.on("error", reject);
			setTimeout(() => socket.destroy(), 3000);
		});
		expect(said).toMatch(/"tls_required":true/);
		expect(said).not.toMatch(/PONG/);
	});

	it("is checked by the client: a server certificate the client's CA did not sign is refused", async () => {
		await expect(connect({ ...natsOptions({ ...config, natsCa: undefined }), tls: {}, maxReconnectAttempts: 0 })).rejects.toThrow();
	});
});

describe("NATS: what each group's user may do", () => {
	it("the gateway's user cannot use JetStream's API, purge or delete a stream, or publish into one", async () => {
		const before = await count(transactions.name);
		const api = await asGroup("api");
		try {
			await expect(api.jetstreamManager({ timeout: 2000 })).rejects.toThrow();
			// Raw requests to the API subjects get no answer: the server drops what the user may not publish.
			await expect(api.request(`$JS.API.STREAM.PURGE.${transactions.name}`, undefined, { timeout: 1500 })).rejects.toThrow();
			await expect(api.request(`$JS.API.STREAM.DELETE.${transactions.name}`, undefined, { timeout: 1500 })).rejects.toThrow();
			await expect(api.jetstream({ timeout: 1500 }).publish(transactions.subject, JSON.stringify({ records: [{ forged: true }] }))).rejects.toThrow();
			await expect(api.jetstream({ timeout: 1500 }).publish(consultations.subject, JSON.stringify({ subject: "forged" }))).rejects.toThrow();
		} finally {
			await api.close();
		}
		expect(await count(transactions.name)).toBe(before);
		expect(await count(consultations.name)).toBe(0);
	});

	it("Base A's user feeds the consultations stream (and owns its EVENTS), and publishes into no other stream", async () => {
		const before = await count(transactions.name);
		const baseA = await asGroup("base-a");
		try {
			await baseA.jetstream({ timeout: 2000 }).publish(consultations.subject, JSON.stringify({ subject: "s", at: new Date().toISOString(), source: "test" }));
			await expect(baseA.jetstream({ timeout: 1500 }).publish(transactions.subject, JSON.stringify({ records: [] }))).rejects.toThrow();
		} finally {
			await baseA.close();
		}
		expect(await count(consultations.name)).toBe(1);
		expect(await count(transactions.name)).toBe(before);
	});

	it("Base C's front publishes movements and nothing else of JetStream; base-c publishes none", async () => {
		const before = await count(transactions.name);
		const consulted = await count(consultations.name);
		const front = await asGroup("base-c-front");
		const baseC = await asGroup("base-c");
		try {
			await front.jetstream({ timeout: 2000 }).publish(transactions.subject, JSON.stringify({ records: [] }));
			// No JetStream API: it can neither read the movements back nor manage, purge or delete a stream.
			await expect(front.jetstreamManager({ timeout: 2000 })).rejects.toThrow();
			await expect(front.request(`$JS.API.STREAM.PURGE.${transactions.name}`, undefined, { timeout: 1500 })).rejects.toThrow();
			await expect(front.request(`$JS.API.CONSUMER.INFO.${transactions.name}.elasticsearch-writer`, undefined, { timeout: 1500 })).rejects.toThrow();
			await expect(front.jetstream({ timeout: 1500 }).publish(consultations.subject, JSON.stringify({ subject: "forged" }))).rejects.toThrow();
			// The Elasticsearch side takes movements from the front only.
			await expect(baseC.jetstream({ timeout: 1500 }).publish(transactions.subject, JSON.stringify({ records: [] }))).rejects.toThrow();
		} finally {
			await front.close();
			await baseC.close();
		}
		expect(await count(transactions.name)).toBe(before + 1);
		expect(await count(consultations.name)).toBe(consulted);
	});

	it("Base B's user owns no stream: it cannot use JetStream's API", async () => {
		const before = await count(transactions.name);
		const baseB = await asGroup("base-b");
		try {
			await expect(baseB.request(`$JS.API.STREAM.PURGE.${transactions.name}`, undefined, { timeout: 1500 })).rejects.toThrow();
			await expect(baseB.jetstream({ timeout: 1500 }).publish(transactions.subject, JSON.stringify({ records: [] }))).rejects.toThrow();
		} finally {
			await baseB.close();
		}
		expect(await count(transactions.name)).toBe(before);
	});
});

describe("NATS: the audit checkpoints' stream (docs/audit.md)", () => {
	it("Base A's user creates it and appends to it, but cannot purge or delete it nor a message of it; the gateway cannot write it", async () => {
		const checkpoints = channel(namespace, "auditCheckpoints");
		const baseA = await asGroup("base-a");
		const api = await asGroup("api");
		try {
			const jsm = await baseA.jetstreamManager({ timeout: 2000 });
			await jsm.streams.add({ name: checkpoints.name, subjects: [checkpoints.subject], storage: StorageType.Memory, max_bytes: 1024 * 1024, deny_delete: true, deny_purge: true });
			await baseA.jetstream({ timeout: 2000 }).publish(checkpoints.subject, JSON.stringify({ payload: "{}", sig: "" }));
			// UPDATE too is refused in the stack, whose docker/nats.conf names base-a's subjects exactly (test/deploy/stack.test.ts);
			// on this shared development server stream names carry the namespace, and base-a updates its EVENTS stream.
			for (const op of ["PURGE", "DELETE"]) {
				await expect(baseA.request(`$JS.API.STREAM.${op}.${checkpoints.name}`, JSON.stringify({ name: checkpoints.name }), { timeout: 1500 })).rejects.toThrow();
			}
			await expect(baseA.request(`$JS.API.STREAM.MSG.DELETE.${checkpoints.name}`, JSON.stringify({ seq: 1 }), { timeout: 1500 })).rejects.toThrow();
			await expect(api.jetstream({ timeout: 1500 }).publish(checkpoints.subject, JSON.stringify({ payload: "{}", sig: "" }))).rejects.toThrow();
			expect((await jsm.streams.info(checkpoints.name)).state.messages).toBe(1);
		} finally {
			await baseA.close();
			await api.close();
			// Removed by the test's all-groups user.
			const nc = await connect(natsOptions());
			await (await nc.jetstreamManager()).streams.delete(checkpoints.name).catch(() => false);
			await nc.close();
		}
	});
});
