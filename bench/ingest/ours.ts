// Ours, the ingest through the gateway: the NDJSON bodies POSTed until every movement is searchable,
// with the TRANSACTIONS stream sampled meanwhile, and what it printed.
import { setTimeout as sleep } from "node:timers/promises";
import type { Client } from "@elastic/elasticsearch";
import type { JetStreamManager } from "nats";
import { type CpuReport, cpuMeter, enginePids } from "../lib/cpu";
import { postText } from "../lib/http";
import type { Watch } from "../lib/measure";
import { cpuText, fmt } from "../lib/report";
import { percentiles } from "../lib/stats";
import { type EsDelta, countBySubjects, esDelta, esStats, esText } from "./elasticsearch";
import { CONSUMER_DURABLE } from "./services";

interface StreamSample { t: number; lastSeq: number; messages: number; ackPending: number; redelivered: number }

export interface OursIngest {
	seconds: number;
	acceptedSeconds: number;
	requests: number;
	errors: number;
	postP50: number;
	postP99: number;
	/** When JetStream had stored the last message (from 100 ms samples of the stream), s after the start. */
	publishedSeconds: number;
	backlogPeak: number;
	redelivered: number;
	es: EsDelta;
	/** CPU while the 202s were coming back, then while the consumer caught up. */
	cpuAccepting: CpuReport;
	cpuDraining: CpuReport;
	samples: StreamSample[];
}

/**
 * POSTs the bodies with `parallel` concurrent requests, timed from the first request until the
 * movements are searchable: the stream is sampled every 100 ms (what JetStream has stored, what the
 * consumer has yet to ack); once all 202s are back and the stream is empty (work-queue: a message
 * goes when the consumer acks it, after Elasticsearch confirmed it), a refresh and a count by the
 * run's subjects say whether every movement is there (also checked every 2 s regardless).
 */
export async function ingestOurs(o: {
	base: string; key: string; bodies: string[]; expected: number; es: Client; index: string; subjects: string[]; target: number;
	jsm: JetStreamManager; stream: string; dlq: string; meshProcs: Watch["meshProcs"]; dataDir: string | undefined;
	/** Requests in flight, and the longest wait (s) for the movements to be searchable. */
	parallel: number; ingestTimeout: number;
}): Promise<OursIngest> {
	const before = await o.jsm.streams.info(o.stream);
	const seq0 = before.state.last_seq;
	const stats0 = await esStats(o.es, o.index);
	const latencies: number[] = [];
	const samples: StreamSample[] = [];
	let errors = 0;
	let firstError = "";
	let sampling = true;
	const engines = enginePids(o.dataDir);
	let meter = cpuMeter(o.meshProcs, engines);
	const t0 = process.hrtime.bigint();
	const since = () => Number(process.hrtime.bigint() - t0) / 1e9;

	const sampler = (async () => {
		while (sampling) {
			try {
				const [s, c] = await Promise.all([o.jsm.streams.info(o.stream), o.jsm.consumers.info(o.stream, CONSUMER_DURABLE)]);
				samples.push({ t: since(), lastSeq: s.state.last_seq - seq0, messages: s.state.messages, ackPending: c.num_ack_pending, redelivered: c.num_redelivered });
			} catch {
				// a slow answer: the next sample will do
			}
			await sleep(100);
		}
	})();

	let next = 0;
	await Promise.all(Array.from({ length: o.parallel }, async () => {
		while (next < o.bodies.length && errors === 0) {
			const body = o.bodies[next++];
			const lines = body.split("\n").length;
			const start = process.hrtime.bigint();
			const res = await postText(o.base, "/api/v1/transactions", o.key, body, "application/x-ndjson").catch(err => ({ status: 0, body: (err as Error).message }));
			if (res.status === 202 && res.body?.accepted === lines) latencies.push(Number(process.hrtime.bigint() - start) / 1e6);
			else {
				errors++;
				firstError ||= `${res.status} ${JSON.stringify(res.body).slice(0, 300)}`;
			}
		}
	}));
	const acceptedSeconds = since();
	const cpuAccepting = meter();
	meter = cpuMeter(o.meshProcs, engines);
	if (errors > 0) {
		sampling = false;
		await sampler;
		throw new Error(`POST /api/v1/transactions: ${errors} request(s) not answered 202 with every movement accepted; first: ${firstError}`);
	}

	const deadline = Date.now() + o.ingestTimeout * 1000;
	let lastCount = -1;
	let lastCountAt = 0;
	for (;;) {
		const s = await o.jsm.streams.info(o.stream);
		if (s.state.messages === 0 || Date.now() - lastCountAt > 2000) {
			lastCount = await countBySubjects(o.es, o.index, o.subjects);
			lastCountAt = Date.now();
			if (lastCount >= o.target) break;
		}
		if (Date.now() > deadline) {
			const dead = (await o.jsm.streams.info(o.dlq).catch(() => null))?.state.messages ?? "?";
			sampling = false;
			await sampler;
			throw new Error(`not all movements searchable within ${o.ingestTimeout} s: ${lastCount - (o.target - o.expected)} of ${o.expected}; stream holds ${s.state.messages}, dead letters ${dead}`);
		}
		await sleep(50);
	}
	const seconds = since();
	const cpuDraining = meter();
	sampling = false;
	await sampler;
	if (lastCount !== o.target) console.warn(`  WARNING: ${lastCount - o.target} more documents of the run's subjects than expected (someone else wrote to these CPFs?)`);
	const stats1 = await esStats(o.es, o.index);
	const { p50, p99 } = percentiles(latencies);
	const published = samples.find(s => s.lastSeq >= o.expected);
	return {
		seconds, acceptedSeconds, requests: latencies.length, errors, postP50: p50, postP99: p99,
		publishedSeconds: published?.t ?? NaN,
		backlogPeak: Math.max(0, ...samples.map(s => s.messages)),
		redelivered: Math.max(0, ...samples.map(s => s.redelivered)),
		es: esDelta(stats0, stats1, seconds),
		cpuAccepting, cpuDraining, samples
	};
}

/** The lines printed after ours has ingested `movements`. */
export function printIngestOurs(o: OursIngest, movements: number): void {
	console.log(`  ${fmt(movements / o.seconds, 0)} movements/s searchable after ${fmt(o.seconds)} s; every 202 back after ${fmt(o.acceptedSeconds)} s (${fmt(movements / o.acceptedSeconds, 0)} movements/s accepted)`);
	console.log(`  POST p50 ${fmt(o.postP50)} ms, p99 ${fmt(o.postP99)} ms; JetStream had every message at ${fmt(o.publishedSeconds)} s (${fmt(o.seconds - o.publishedSeconds)} s before all were searchable); backlog peak ${o.backlogPeak}; redelivered ${o.redelivered}`);
	console.log(`  ${esText(o.es)}`);
	console.log(`  cpu while accepting (0–${fmt(o.acceptedSeconds, 1)} s): ${cpuText(o.cpuAccepting)}`);
	console.log(`  cpu while draining (${fmt(o.acceptedSeconds, 1)}–${fmt(o.seconds, 1)} s): ${cpuText(o.cpuDraining)}`);
}
