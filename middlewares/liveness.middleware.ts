import type { Middleware, ServiceBroker } from "moleculer";
import { ErrorCode, type NatsConnection, type Subscription } from "nats";

/** The NATS transporter's own connection and subject prefix (`MOL-<namespace>`), which Moleculer's types leave out. */
interface NatsTransit { tx?: { client?: NatsConnection | null; prefix?: string } }

interface Options {
	/** How often every remote node is probed. */
	intervalMs?: number;
	/** A node is dropped after this many probes in a row found nobody listening. */
	misses?: number;
	/** A node must have been known this long before a probe may drop it (it subscribes just after it appears). */
	graceMs?: number;
}

/** The subject a node answers its liveness probes on. */
export const aliveSubject = (prefix: string, nodeID: string) => `${prefix}.ALIVE.${nodeID}`;

/**
 * A node killed with SIGKILL (or whose machine vanished) sends no goodbye: Moleculer drops it only at
 * the heartbeat timeout, and meanwhile calls balanced to it wait out the request timeout. NATS itself
 * knows at once: the dead node's connection, and with it its subscriptions, are gone. So every node
 * listens on `<prefix>.ALIVE.<nodeID>` on the transporter's own connection, and probes every other
 * node there each second with a NATS request: a live node answers; a dead one's subject has no
 * subscriber left and the server says so at once ("no responders"). After `misses` such answers in a
 * row the node is disconnected in the registry, which rejects its pending calls as retryable, so they
 * are retried on a live replica seconds sooner. A probe that merely times out (a busy node, NATS
 * restarting) proves nothing and drops nobody; the heartbeat timeout stays the backstop. State per broker.
 */
export function LivenessMiddleware(o: Options = {}): Middleware {
	const intervalMs = o.intervalMs ?? 1000;
	const misses = o.misses ?? 2;
	const graceMs = o.graceMs ?? 5000;
	const running = new WeakMap<ServiceBroker, { timer: NodeJS.Timeout; sub: Subscription; seen: Map<string, number>; missed: Map<string, number>; quietUntil: number }>();

	function connection(broker: ServiceBroker): { client: NatsConnection; prefix: string } | null {
		const tx = (broker.transit as unknown as NatsTransit | undefined)?.tx;
		return tx?.client && tx.prefix && typeof tx.client.request === "function" ? { client: tx.client, prefix: tx.prefix } : null;
	}

	async function probe(broker: ServiceBroker, nodeID: string): Promise<void> {
		const state = running.get(broker);
		const nats = connection(broker);
		if (!state || !nats || nats.client.isClosed() || Date.now() < state.quietUntil) return;
		try {
			await nats.client.request(aliveSubject(nats.prefix, nodeID), undefined, { timeout: Math.max(200, intervalMs - 100) });
			state.missed.delete(nodeID);
		} catch (err) {
			if ((err as { code?: string })?.code !== ErrorCode.NoResponders || Date.now() < state.quietUntil) return;
			const n = (state.missed.get(nodeID) ?? 0) + 1;
			state.missed.set(nodeID, n);
			const node = broker.registry.nodes.get(nodeID);
			if (n >= misses && node?.available) {
				state.missed.delete(nodeID);
				broker.logger.warn(`Node '${nodeID}' is gone from NATS (no listener on its liveness subject ${n} times in a row): disconnecting it now.`);
				broker.registry.nodes.disconnected(nodeID, true);
			}
		}
	}

	return {
		name: "Liveness",
		started(broker: ServiceBroker) {
			const nats = connection(broker);
			if (!nats) return;
			const sub = nats.client.subscribe(aliveSubject(nats.prefix, broker.nodeID), { callback: (_err, msg) => msg.respond() });
			const seen = new Map<string, number>();
			const timer = setInterval(() => {
				const now = Date.now();
				for (const node of broker.registry.nodes.list({ onlyAvailable: true, withServices: false }) as { id: string; local: boolean }[]) {
					if (node.local) continue;
					if (!seen.has(node.id)) seen.set(node.id, now);
					if (now - seen.get(node.id)! >= graceMs) void probe(broker, node.id);
				}
				// Forget nodes no longer available, so one that comes back gets its grace again.
				for (const id of seen.keys()) if (!broker.registry.nodes.get(id)?.available) seen.delete(id);
			}, intervalMs);
			timer.unref();
			const state = { timer, sub, seen, missed: new Map<string, number>(), quietUntil: 0 };
			running.set(broker, state);
			// After NATS went away every node resubscribes on its own schedule: until they all could, a missing
			// listener means nothing, so probing pauses for the grace period and the counts start afresh.
			void (async () => {
				for await (const s of nats.client.status()) {
					if (s.type === "disconnect" || s.type === "reconnect") {
						state.quietUntil = Date.now() + graceMs;
						state.missed.clear();
					}
				}
			})().catch(() => undefined);
		},
		stopped(broker: ServiceBroker) {
			const state = running.get(broker);
			if (!state) return;
			clearInterval(state.timer);
			state.sub.unsubscribe();
			running.delete(broker);
		}
	} as unknown as Middleware;
}
