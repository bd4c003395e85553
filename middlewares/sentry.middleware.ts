import type * as SentryNode from "@sentry/node";
import type { Breadcrumb, Event } from "@sentry/node";
import type { Context, Middleware, ServiceBroker } from "moleculer";
import { toHttpError } from "../lib/gateway/errors";
import { REDACTED, scrubText, scrubValue } from "../lib/scrub";

export interface SentrySettings {
	/** Without a DSN the middleware is inert: Sentry is neither loaded nor initialised, nothing is wrapped. */
	dsn?: string;
	environment: string;
}

/**
 * Reported: what a client would get as the bare 500 — no code, a code below 400, or a code of 500 and
 * above. Not reported: client errors (4xx) and outages, which the gateway answers with 503
 * (a base unavailable, no live node, a timeout, a full queue): they are expected, have Retry-After and
 * are watched through metrics and /health/ready.
 */
export function isUnexpected(err: unknown): boolean {
	return toHttpError(err).status === 500;
}

// Drivers and parsers echo the values they choke on between quotes (`invalid input syntax: "…"`,
// `dup key: { _id: "…" }`, `Unexpected token 'F', "Fulano" is not valid JSON`): the quoted part goes.
const QUOTED = /"[^"\n]*"|'[^'\n]*'|`[^`\n]*`/g;
const URL_LIKE = /^([a-z][a-z0-9+.-]*:\/\/|\/)/i;
// Keys whose values are request or response data: never sent.
const DATA_KEYS = /query|fragment|body|params|payload|headers|cookies/i;
// Our own identifiers (UUIDs, event and trace ids) are random hex: a run of 11 digits in them is no CPF.
const OPAQUE_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$|^[0-9a-f]{16}$|^[0-9a-f]{32}$/i;

/** Free text: CPFs masked and quoted literals dropped. */
export function scrubMessage(text: string): string {
	return scrubText(text).replace(QUOTED, `"${REDACTED}"`);
}

/** A URL without credentials, query string or fragment, CPFs in its path masked. */
export function scrubUrl(url: string): string {
	return scrubText(url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@?#]*@/i, "$1").replace(/[?#].*$/s, ""));
}

function scrubData(data: Record<string, unknown>): Record<string, unknown> {
	const out: Record<string, unknown> = {};
	for (const [key, value] of Object.entries(data)) {
		if (DATA_KEYS.test(key)) continue;
		out[key] = typeof value === "string" ? (URL_LIKE.test(value) ? scrubUrl(value) : scrubMessage(value)) : value;
	}
	return out;
}

/** A breadcrumb with personal fields redacted, CPFs masked, URLs cut down and request data dropped. */
export function scrubBreadcrumb(crumb: Breadcrumb): Breadcrumb {
	const out = scrubValue(crumb) as Breadcrumb;
	if (out.message) out.message = scrubMessage(out.message);
	if (out.data) out.data = scrubData(out.data);
	return out;
}

/**
 * The whole event through scrubValue (personal fields by name anywhere, CPFs in every string), then
 * the free-text parts (messages, exception values) without quoted literals, request data reduced to
 * method and bare URL, no user, breadcrumbs scrubbed. Ids are kept as they are.
 */
export function scrubEvent<T extends Event>(event: T): T {
	const out = scrubValue(event) as T;
	if (out.message) out.message = scrubMessage(out.message);
	if (out.logentry) out.logentry = { message: out.logentry.message && scrubMessage(out.logentry.message) };
	for (const ex of out.exception?.values ?? []) if (ex.value) ex.value = scrubMessage(ex.value);
	if (out.request) out.request = { method: out.request.method, url: out.request.url && scrubUrl(out.request.url) };
	delete out.user;
	if (out.breadcrumbs) out.breadcrumbs = out.breadcrumbs.map(scrubBreadcrumb);
	if (out.extra) out.extra = scrubData(out.extra);
	// Random ids (and the operator's release) may hold a run of 11 digits; masking it would only break the event.
	out.event_id = event.event_id;
	out.release = event.release;
	const trace = event.contexts?.trace;
	if (trace && out.contexts?.trace) Object.assign(out.contexts.trace, { trace_id: trace.trace_id, span_id: trace.span_id, parent_span_id: trace.parent_span_id });
	const requestId = event.tags?.request_id;
	if (typeof requestId === "string" && OPAQUE_ID.test(requestId) && out.tags) out.tags.request_id = requestId;
	return out;
}

/** The Sentry options: errors only, nothing collected that we do not control, everything scrubbed. */
export function sentryOptions(Sentry: typeof SentryNode, settings: SentrySettings): SentryNode.NodeOptions {
	return {
		dsn: settings.dsn,
		environment: settings.environment,
		// Only integrations that add no data of ours: no http/fetch/console breadcrumbs, no request data,
		// no source lines or local variables, no process-wide handlers (an unhandledRejection listener
		// would change how Node ends the process, and Sentry's would print raw stacks past the log scrubber).
		defaultIntegrations: false,
		integrations: [
			Sentry.eventFiltersIntegration(),
			Sentry.functionToStringIntegration(),
			Sentry.linkedErrorsIntegration(),
			Sentry.dedupeIntegration(),
			Sentry.nodeContextIntegration()
		],
		dataCollection: {
			userInfo: false, cookies: false, httpHeaders: false, httpBodies: [], urlQueryParams: false,
			databaseQueryData: false, queues: false, stackFrameVariables: false, frameContextLines: 0,
			graphQL: { document: false, variables: false }, genAI: { inputs: false, outputs: false }, mcp: { inputs: false, outputs: false }
		},
		// Tracing stays with Moleculer (spans without params); explicit 0 also ignores SENTRY_TRACES_SAMPLE_RATE.
		tracesSampleRate: 0,
		beforeSend: event => scrubEvent(event),
		beforeBreadcrumb: crumb => scrubBreadcrumb(crumb)
	};
}

// A client of each broker's own, never Sentry's global one: brokers of one process (tests, benchmarks)
// neither share nor close each other's client.
const clients = new WeakMap<ServiceBroker, SentryNode.NodeClient>();

/** The broker's Sentry client, while it runs with a DSN (to flush it, e.g. before a process exits). */
export function sentryClient(broker: ServiceBroker): SentryNode.NodeClient | undefined {
	return clients.get(broker);
}

function report(client: SentryNode.NodeClient, Scope: typeof SentryNode.Scope, err: unknown, nodeID: string, tags: Record<string, string>, reported: WeakSet<object>): void {
	if (!isUnexpected(err)) return;
	const e = err as { nodeID?: string } | null;
	if (e && typeof e === "object") {
		// Reported once: by the node where it was thrown (a remote error carries that node's id) and
		// only the first time it passes a wrapper (nested local calls rethrow the same object).
		if ((e.nodeID && e.nodeID !== nodeID) || reported.has(e)) return;
		reported.add(e);
	}
	const scope = new Scope();
	scope.setClient(client);
	scope.setLevel("error");
	scope.setTags({ ...tags, node_id: nodeID });
	client.captureException(err, undefined, scope);
}

/**
 * Reports unexpected errors of local actions and event handlers to Sentry, tagged with the action
 * (or event), the node id and the request id; never params, meta or bodies.
 */
export function SentryMiddleware(settings: SentrySettings): Middleware {
	if (!settings.dsn) return { name: "Sentry" } as Middleware;
	const reported = new WeakSet<object>();
	// Loaded only when a DSN is configured: without one the process pays nothing for it.
	// eslint-disable-next-line @typescript-eslint/no-require-imports
	const Sentry: typeof SentryNode = require("@sentry/node");
	const wrap = (broker: ServiceBroker, next: (ctx: Context) => Promise<unknown>, tag: Record<string, string>) => {
		const nodeID = broker.nodeID;
		return (ctx: Context) => next(ctx).catch((err: unknown) => {
			const client = clients.get(broker);
			if (client) report(client, Sentry.Scope, err, nodeID, { ...tag, request_id: String(ctx.requestID ?? "") }, reported);
			throw err;
		});
	};
	return {
		name: "Sentry",
		created(broker: ServiceBroker) {
			const options = sentryOptions(Sentry, settings);
			const client = new Sentry.NodeClient({
				...options, integrations: options.integrations as Extract<SentryNode.NodeOptions["integrations"], unknown[]>,
				transport: Sentry.makeNodeTransport, stackParser: Sentry.defaultStackParser
			});
			client.init();
			clients.set(broker, client);
		},
		async stopped(broker: ServiceBroker) {
			const client = clients.get(broker);
			clients.delete(broker);
			await client?.close(2000);
		},
		localAction(this: ServiceBroker, next: (ctx: Context) => Promise<unknown>, action: { name: string }) {
			return wrap(this, next, { action: action.name });
		},
		localEvent(this: ServiceBroker, next: (ctx: Context) => Promise<unknown>, event: { name: string }) {
			return wrap(this, next, { event: event.name });
		}
	} as unknown as Middleware;
}
