// Messages and bytes through the NATS server during a measurement, from its monitoring endpoint (/varz).

export interface NatsTraffic { inMsgs: number; outMsgs: number; inBytes: number; outBytes: number }

/** The server's counters now, or null when its monitoring port (NATS_HTTP_PORT, default 8222, on 127.0.0.1) does not answer. */
export async function natsCounters(): Promise<NatsTraffic | null> {
	try {
		const res = await fetch(`http://127.0.0.1:${process.env.NATS_HTTP_PORT ?? 8222}/varz`, { signal: AbortSignal.timeout(1000) });
		const v = (await res.json()) as { in_msgs: number; out_msgs: number; in_bytes: number; out_bytes: number };
		return { inMsgs: v.in_msgs, outMsgs: v.out_msgs, inBytes: v.in_bytes, outBytes: v.out_bytes };
	} catch {
		return null;
	}
}

/** What went through the server between two readings. */
export function trafficBetween(before: NatsTraffic | null, after: NatsTraffic | null): NatsTraffic | null {
	if (!before || !after) return null;
	return { inMsgs: after.inMsgs - before.inMsgs, outMsgs: after.outMsgs - before.outMsgs, inBytes: after.inBytes - before.inBytes, outBytes: after.outBytes - before.outBytes };
}

/** "per request: 4.1 messages in (2.3 KiB), 4.1 out (2.3 KiB)"; the whole run when no request count is known. */
export function trafficText(t: NatsTraffic, requests?: number): string {
	const per = requests && requests > 0 ? requests : 1;
	const kib = (b: number) => `${(b / per / 1024).toFixed(requests ? 2 : 0)} KiB`;
	const n = (m: number) => (m / per).toFixed(requests ? 1 : 0);
	return `${requests ? "per request" : "in all"}: ${n(t.inMsgs)} messages in (${kib(t.inBytes)}), ${n(t.outMsgs)} out (${kib(t.outBytes)})`;
}
