import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// A stand-in for Sentry's ingest: collects the envelopes POSTed to /api/<project>/envelope/.
interface Envelope {
	raw: string;
	items: { header: any; payload: any }[];
}
const envelopes: Envelope[] = [];
let sink: Server;

function parseEnvelope(raw: string): Envelope {
	// An envelope header line, then for each item a header line and a payload line.
	const lines = raw.split("\n").filter(l => l.length > 0);
	const items = [];
	for (let i = 1; i + 1 < lines.length; i += 2) items.push({ header: JSON.parse(lines[i]), payload: JSON.parse(lines[i + 1]) });
	return { raw, items };
}

const events = () => envelopes.flatMap(e => e.items.filter(i => i.header.type === "event").map(i => i.payload));

// The project is imported only once SENTRY_DSN is set (config is read once, at import): dynamic
// imports, which node16 resolution wants with the extension of the compiled file.
let mesh: import("./support/mesh").Mesh;
let support: typeof import("./support/mesh");
let cpfLib: typeof import("../lib/cpf");
let ownerQuery: typeof import("./support/db").ownerQuery;
let blindIndex: (cpf: string) => string;
let sentryMiddleware: typeof import("../middlewares/sentry.middleware");

beforeAll(async () => {
	sink = createServer((req, res) => {
		const chunks: Buffer[] = [];
		req.on("data", c => chunks.push(c));
		req.on("end", () => {
			if (req.method === "POST" && /^\/api\/1\/envelope\/(\?|$)/.test(req.url ?? "")) {
				const body = Buffer.concat(chunks);
				envelopes.push(parseEnvelope((req.headers["content-encoding"] === "gzip" ? gunzipSync(body) : body).toString("utf8")));
			}
			res.writeHead(200, { "content-type": "application/json" }).end("{}");
		});
	});
	await new Promise<void>(resolve => sink.listen(0, "127.0.0.1", resolve));
	process.env.SENTRY_DSN = `http://publickey@127.0.0.1:${(sink.address() as AddressInfo).port}/1`;

	support = await import("./support/mesh.js");
	cpfLib = await import("../lib/cpf.js");
	({ ownerQuery } = await import("./support/db.js"));
	sentryMiddleware = await import("../middlewares/sentry.middleware.js");
	const { piiCipher } = await import("./support/keys.js");
	blindIndex = cpf => piiCipher().blindIndex(cpf);
	mesh = await support.startMesh(support.BASE_A_MESH);
});

afterAll(async () => {
	await mesh?.stop();
	await new Promise(resolve => sink?.close(resolve));
	delete process.env.SENTRY_DSN;
});

/** Waits until every event captured so far has left (the SDK sends asynchronously). */
/** Waits until every broker's client has sent what it holds. */
async function flush(): Promise<void> {
	const flushed = await Promise.all(mesh.brokers.map(b => sentryMiddleware.sentryClient(b)?.flush(5000) ?? false));
	expect(flushed.filter(Boolean).length).toBe(mesh.brokers.length);
}

describe("Sentry", () => {
	const nome = "Zuleika Bragancaverde";
	const endereco = "Rua Inesquecivel Xyz, 4321";
	let cpf: string;

	it("is initialised when SENTRY_DSN is set: a client of each broker's own, none process-wide", () => {
		for (const broker of mesh.brokers) expect(sentryMiddleware.sentryClient(broker)?.getDsn()?.port).toBe(String((sink.address() as AddressInfo).port));
		expect(new Set(mesh.brokers.map(b => sentryMiddleware.sentryClient(b))).size).toBe(mesh.brokers.length);
		// eslint-disable-next-line @typescript-eslint/no-require-imports
		expect(require("@sentry/node").isInitialized()).toBe(false);
		expect(Object.keys(require.cache).some(path => path.includes("/@sentry/node/"))).toBe(true);
	});

	it("reports an unexpected error, tagged and scrubbed, while the client gets a bare 500", async () => {
		cpf = cpfLib.randomCpf();
		const created = await support.api(mesh, "POST", "/api/v1/persons", { body: { cpf: cpfLib.formatCpf(cpf), nome, endereco } });
		expect(created.status).toBe(201);
		// A ciphertext moved to another column no longer decrypts (its AAD names the column): a genuine 500.
		const updated = await ownerQuery("UPDATE persons SET nome_enc = endereco_enc WHERE cpf_bidx = $1 RETURNING id", [blindIndex(cpf)]);
		expect(updated).toHaveLength(1);

		const res = await support.api(mesh, "GET", `/api/v1/persons/${cpfLib.formatCpf(cpf)}`);
		expect(res.status).toBe(500);
		expect(res.body).toEqual({ name: "InternalServerError", message: "Unexpected error; quote the X-Request-Id when reporting it", code: 500, type: "INTERNAL_ERROR" });
		const requestId = res.headers.get("x-request-id");
		expect(requestId).toBeTruthy();

		const found = await support.eventually(async () => events().filter(e => e.tags?.request_id === requestId), list => list.length > 0, 10_000, 100);
		expect(found).toHaveLength(1); // once, though the error crossed NATS to the gateway
		const [event] = found;
		expect(event.tags).toMatchObject({ action: "cpf-lookup.get", node_id: mesh.broker("cpf-lookup").nodeID, request_id: requestId });
		expect(event.environment).toBe("test");
		expect(event.level).toBe("error");
		expect(event.exception.values[0].value).toMatch(/unable to authenticate data/);
		expect(event.request).toBeUndefined();
		expect(event.user).toBeUndefined();

		const raw = envelopes.map(e => e.raw).join("\n");
		for (const secret of [cpf, cpfLib.formatCpf(cpf), nome, "Zuleika", "Bragancaverde", endereco, "Inesquecivel", mesh.adminKey]) {
			expect(raw).not.toContain(secret);
		}
	});

	it("reports no client error (422) and no unknown CPF (404)", async () => {
		await flush();
		const before = events().length;
		const invalid = await support.api(mesh, "GET", "/api/v1/persons/52998224726");
		expect(invalid.status).toBe(422);
		const unknown = await support.api(mesh, "GET", `/api/v1/persons/${cpfLib.randomCpf()}`);
		expect(unknown.status).toBe(404);
		const badBody = await support.api(mesh, "POST", "/api/v1/persons", { body: { cpf, nome: "<script>", endereco } });
		expect(badBody.status).toBe(422);
		await flush();
		expect(events()).toHaveLength(before);
		const ids = [invalid, unknown, badBody].map(r => r.headers.get("x-request-id"));
		expect(events().filter(e => ids.includes(e.tags?.request_id))).toEqual([]);
	});

	it("flushes and closes each broker's client when the broker stops", async () => {
		const clients = mesh.brokers.map(b => sentryMiddleware.sentryClient(b));
		await mesh.stop();
		mesh = undefined as any;
		// A closed client is disabled: it sends nothing more.
		for (const client of clients) expect(client?.getOptions().enabled).toBe(false);
	});
});
