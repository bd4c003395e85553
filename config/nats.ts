import type { ConnectionOptions } from "nats";
import { config, need, type Config } from "./index";

/**
 * How this process connects to NATS, for the transporter and for JetStream alike: the servers and
 * credentials of TRANSPORTER (`nats://user:pass@host:port`, comma-separated hosts for a cluster) and,
 * with NATS_CA, TLS that checks the server's certificate against that CA.
 */
export function natsOptions(cfg: Pick<Config, "transporter" | "natsCa"> = config, transporter = need(cfg as Config, "transporter")): ConnectionOptions {
	const urls = transporter.split(",").map(u => new URL(u.trim()));
	return {
		servers: urls.map(u => `${u.hostname}:${u.port || 4222}`),
		user: decodeURIComponent(urls[0].username) || undefined,
		pass: decodeURIComponent(urls[0].password) || undefined,
		...(cfg.natsCa ? { tls: { ca: cfg.natsCa } } : {})
	};
}

/**
 * The broker's `transporter` option: Moleculer's NATS transporter with natsOptions (null: no transporter).
 * Request replies (the liveness probes, middlewares/liveness.middleware.ts) come back under Moleculer's own
 * subjects, `MOL-<namespace>.INBOX.…`, which every group may use (docker/nats.conf), not under `_INBOX`.
 */
export function transporterOptions(cfg: Pick<Config, "transporter" | "natsCa" | "namespace"> = config, transporter = cfg.transporter) {
	if (!transporter) return null;
	return { type: "NATS", options: { url: transporter, inboxPrefix: `MOL-${cfg.namespace}.INBOX`, ...(cfg.natsCa ? { tls: { ca: cfg.natsCa } } : {}) } };
}
