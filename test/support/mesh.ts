import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import type { AddressInfo } from "node:net";
import { type BrokerOptions, ServiceBroker, type ServiceSchema } from "moleculer";
import brokerConfig from "../../moleculer.config";
import { connect } from "nats";
import { type Config, config } from "../../config";
import { natsOptions } from "../../config/nats";
import { STREAMS, channel, type StreamKey } from "../../lib/mesh/streams";
import ApiService from "../../services/api.service";
import PersonsService from "../../services/persons.service";
import CpfLookupService from "../../services/cpf-lookup.service";
import DebtWriteService from "../../services/debt-write.service";
import AuditService from "../../services/audit.service";
import ConsumersService from "../../services/consumers.service";
import IdempotencyService from "../../services/idempotency.service";
import ProfilesService from "../../services/profiles.service";
import AssetScoreService from "../../services/asset-score.service";
import MlExportService from "../../services/ml-export.service";
import TransactionIngestService from "../../services/transaction-ingest.service";
import TransactionWriterService from "../../services/transaction-writer.service";
import ActivityService from "../../services/activity.service";
import ActivityFrontService from "../../services/activity-front.service";
import ReportService from "../../services/report.service";
import CreditScoreService from "../../services/credit-score.service";
import ScoreHistoryService from "../../services/score-history.service";
import PrivacyService from "../../services/privacy.service";
import EventsRelayService from "../../services/events-relay.service";
import MonitoringService from "../../services/monitoring.service";
import WebhookDeliveriesService from "../../services/webhook-deliveries.service";

/** Every service of Base A plus the gateway (the outbox relay included: Base B's writes announce their events to it). */
export const BASE_A_MESH: ServiceSchema[] = [
	ApiService, PersonsService, CpfLookupService, DebtWriteService, AuditService, ConsumersService, IdempotencyService, EventsRelayService
];
/** Base B's services. */
export const BASE_B_SERVICES: ServiceSchema[] = [ProfilesService, AssetScoreService, MlExportService, ScoreHistoryService];
/** Base C's services: its front (base-c-front: the pseudonym key) and its Elasticsearch side (base-c). */
export const BASE_C_FRONT_SERVICES: ServiceSchema[] = [TransactionIngestService, ActivityFrontService];
export const BASE_C_STORE_SERVICES: ServiceSchema[] = [TransactionWriterService, ActivityService];
export const BASE_C_SERVICES: ServiceSchema[] = [...BASE_C_FRONT_SERVICES, ...BASE_C_STORE_SERVICES];
/** Base A's monitoring and webhooks (docs/webhooks.md): lists and subscriptions, deliveries. */
export const WEBHOOK_SERVICES: ServiceSchema[] = [MonitoringService, WebhookDeliveriesService];
/** The whole mesh as it stands. */
export const FULL_MESH: ServiceSchema[] = [...BASE_A_MESH, ...BASE_B_SERVICES, ...BASE_C_SERVICES, ReportService, CreditScoreService, PrivacyService, ...WEBHOOK_SERVICES];

export interface Mesh {
	namespace: string;
	brokers: ServiceBroker[];
	/** The gateway's base URL, e.g. http://127.0.0.1:41234 */
	url: string;
	adminKey: string;
	broker(service: string): ServiceBroker;
	stop(): Promise<void>;
}

/**
 * Each service on a broker of its own, all meeting over the real NATS server in a namespace of
 * this mesh alone; the gateway listens on a free port.
 */
export async function startMesh(services: ServiceSchema[] = FULL_MESH, opts: { logLevel?: string; broker?: Partial<BrokerOptions> } = {}): Promise<Mesh> {
	const namespace = `test-${randomBytes(4).toString("hex")}`;
	const logger: any = brokerConfig.logger;
	const brokers = services.map(schema => {
		const broker = new ServiceBroker({
			...brokerConfig,
			namespace,
			nodeID: `${schema.name}-${randomBytes(2).toString("hex")}`,
			logger: { ...logger, options: { ...logger.options, level: opts.logLevel ?? config.logLevel } },
			...opts.broker
		});
		broker.createService(schema);
		return broker;
	});
	await Promise.all(brokers.map(b => b.start()));
	await Promise.all(brokers.map(b => b.waitForServices(services.map(s => s.name), 15_000)));
	const gateway = brokers.find(b => b.getLocalService("api"));
	const port = gateway ? ((gateway.getLocalService("api") as any).server.address() as AddressInfo).port : 0;
	return {
		namespace,
		brokers,
		url: `http://127.0.0.1:${port}`,
		adminKey: config.adminApiKey!,
		broker: name => brokers.find(b => b.getLocalService(name))!,
		stop: async () => {
			await Promise.all(brokers.map(b => b.stop()));
			await deleteStreams(namespace);
		}
	};
}

export interface ApiResponse {
	status: number;
	headers: Headers;
	body: any;
}

/** The purpose tests state for their consultations unless they say otherwise (docs/consultation-purpose.md). */
export const TEST_PURPOSE = "concessao_credito";

/**
 * One HTTP request to the gateway; JSON bodies are parsed. Every request states TEST_PURPOSE in the
 * Finalidade header (read only by consultations) unless `finalidade` says another, or null for none.
 */
export async function api(
	mesh: Mesh,
	method: string,
	path: string,
	opts: { key?: string | null; body?: unknown; rawBody?: string | Buffer; headers?: Record<string, string>; finalidade?: string | null } = {}
): Promise<ApiResponse> {
	const finalidade = opts.finalidade === undefined ? TEST_PURPOSE : opts.finalidade;
	const headers: Record<string, string> = { ...(finalidade !== null && { finalidade }), ...opts.headers };
	const key = opts.key === undefined ? mesh.adminKey : opts.key;
	if (key) headers.authorization = `Bearer ${key}`;
	let body: string | Buffer | undefined;
	if (opts.rawBody !== undefined) body = opts.rawBody;
	else if (opts.body !== undefined) {
		body = JSON.stringify(opts.body);
		headers["content-type"] ??= "application/json";
	}
	const res = await fetch(mesh.url + path, { method, headers, body });
	const text = await res.text();
	let parsed: unknown = text;
	if ((res.headers.get("content-type") ?? "").startsWith("application/json") && text) parsed = JSON.parse(text);
	return { status: res.status, headers: res.headers, body: parsed };
}

/** Polls until check() passes or the time is up; returns the last value. */
export async function eventually<T>(probe: () => Promise<T>, check: (v: T) => boolean, timeoutMs = 30_000, everyMs = 250): Promise<T> {
	const until = Date.now() + timeoutMs;
	let last = await probe();
	while (!check(last) && Date.now() < until) {
		await new Promise(r => setTimeout(r, everyMs));
		last = await probe();
	}
	return last;
}

/** Removes a test mesh's JetStream streams, so test runs leave nothing on the NATS server. */
export async function deleteStreams(namespace: string, cfg: Config = config): Promise<void> {
	const nc = await connect(natsOptions(cfg));
	try {
		const jsm = await nc.jetstreamManager();
		for (const key of Object.keys(STREAMS) as StreamKey[]) await jsm.streams.delete(channel(namespace, key).name).catch(() => false);
	} finally {
		await nc.close();
	}
}

/**
 * Runs scripts/engines.sh (e.g. `down`, `postgres`) without blocking the event loop: the mesh under
 * test lives in this process and must keep serving while an engine stops or starts.
 */
export async function engines(...args: string[]): Promise<string> {
	const { stdout } = await promisify(execFile)("bash", ["scripts/engines.sh", ...args], { timeout: 120_000 });
	return stdout.trim();
}
