import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { ServiceSchema } from "moleculer";
import { Webhook, WebhookVerificationError } from "standardwebhooks";
import { expect, vi } from "vitest";
import { randomCpf } from "../../lib/cpf";
import { config } from "../../config";
import ProfilesService from "../../services/profiles.service";
import WebhookDeliveriesService from "../../services/webhook-deliveries.service";
import { BASE_A_MESH, WEBHOOK_SERVICES, api, startMesh, type Mesh } from "./mesh";

// A mesh with monitoring and webhooks, two consumers (x, y) and a local receiver standing in for the
// subscribers (outside the mesh, on 127.0.0.1). The receiver trusts what the specification's own npm
// library, `standardwebhooks`, accepts: not lib/webhooks, whose signing is what is under test.

export interface Received { path: string; headers: IncomingMessage["headers"]; body: string }

/**
 * A receiver's check, with the npm `standardwebhooks` library: the event when it verifies, else the
 * library's WebhookVerificationError (a forged or altered body, another secret, or a timestamp more than
 * 5 minutes from `at`: a delivery replayed later). `at` stands for the receiver's clock.
 */
export function receiverVerifies(secret: string, h: IncomingMessage["headers"], body: string, at = Date.now()): unknown {
	const headers = Object.fromEntries(Object.entries(h).map(([k, v]) => [k, String(v)]));
	const clock = vi.spyOn(Date, "now").mockReturnValue(at);
	try {
		return new Webhook(secret).verify(body, headers);
	} catch (err) {
		if (err instanceof WebhookVerificationError) return err;
		throw err;
	} finally {
		clock.mockRestore();
	}
}

export interface WebhookRig {
	mesh: Mesh;
	/** The receiver's base URL. */
	url: string;
	received: Received[];
	/** Requests a path refuses (503) before it accepts; `/hang` never answers. */
	failures: Map<string, number>;
	consumers: Record<"x" | "y", string>;
	/** A new person (registered by `key`) on `key`'s monitoring list. */
	monitoredPerson(key: string): Promise<string>;
	subscribe(key: string, path: string, eventTypes?: string[]): Promise<{ id: string; secret: string }>;
	/** What the receiver got on `path` about `cpf`. */
	arrived(path: string, cpf: string): Received[];
	stop(): Promise<void>;
}

/**
 * `extra`: services beyond Base A, the webhooks and profiles (a score, an erasure); `deliveries`: settings
 * of webhook-deliveries (a shorter backoff).
 */
export async function startWebhookRig(extra: ServiceSchema[] = [], deliveries: Record<string, unknown> = {}): Promise<WebhookRig> {
	const allowPrivate = config.webhooksAllowPrivate;
	config.webhooksAllowPrivate = true; // the receiver is on loopback
	const received: Received[] = [];
	const failures = new Map<string, number>();
	const sink: Server = createServer((req, res) => {
		let body = "";
		req.on("data", c => (body += c));
		req.on("end", () => {
			if (req.url === "/hang") return;
			const left = failures.get(req.url!) ?? 0;
			if (left > 0) {
				failures.set(req.url!, left - 1);
				return res.writeHead(503).end();
			}
			received.push({ path: req.url!, headers: req.headers, body });
			res.writeHead(204).end();
		});
	});
	await new Promise<void>(r => sink.listen(0, "127.0.0.1", r));
	const url = `http://127.0.0.1:${(sink.address() as AddressInfo).port}`;
	const webhooks = WEBHOOK_SERVICES.map(schema => (schema === WebhookDeliveriesService ? { ...schema, settings: { ...schema.settings, ...deliveries } } : schema));
	const mesh = await startMesh([...BASE_A_MESH, ...webhooks, ProfilesService, ...extra]);
	const consumers = { x: "", y: "" };
	for (const who of ["x", "y"] as const) {
		const c = await api(mesh, "POST", "/api/v1/consumers", { body: { name: `monitor-${who}`, rateLimit: 100_000, scopes: ["persons:read", "persons:write", "debts:write", "profiles:write", "score:read", "monitoring:read", "monitoring:write"] } });
		consumers[who] = c.body.key;
	}
	return {
		mesh, url, received, failures, consumers,
		async monitoredPerson(key) {
			const cpf = randomCpf();
			expect((await api(mesh, "POST", "/api/v1/persons", { key, body: { cpf, nome: "Ana Lima", endereco: "Rua A, 1" } })).status).toBe(201);
			expect((await api(mesh, "POST", "/api/v1/monitoring/cpfs", { key, body: { cpf } })).status).toBe(201);
			return cpf;
		},
		async subscribe(key, path, eventTypes = ["debt.created", "debt.settled", "person.changed"]) {
			const res = await api(mesh, "POST", "/api/v1/monitoring/subscriptions", { key, body: { url: url + path, eventTypes } });
			expect(res.status).toBe(201);
			return res.body as { id: string; secret: string };
		},
		arrived: (path, cpf) => received.filter(r => r.path === path && JSON.parse(r.body).data.cpf === cpf),
		async stop() {
			config.webhooksAllowPrivate = allowPrivate;
			await mesh.stop();
			sink.closeAllConnections();
			await new Promise(r => sink.close(r));
		}
	};
}
