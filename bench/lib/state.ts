// What a benchmark started and must undo: read by every shared helper, written by the benchmark.
import type { ChildProcess } from "node:child_process";
import type { ServiceBroker } from "moleculer";

/** What the shared helpers start and cleanup must stop; each benchmark extends it. */
export interface BenchState {
	children: ChildProcess[];
	/** A broker watching the namespace while the mesh starts. */
	observer?: ServiceBroker;
	/** The load generator running (load.ts), stopped first. */
	cannon?: { stop(): void };
	/** Set when the mesh is stopped on purpose. */
	meshStopping?: boolean;
	/** The benchmark's API consumer, revoked once the mesh side is done. */
	consumer?: { base: string; id: string; adminKey: string };
	/** The mesh's namespace, set as soon as it is drawn: its JetStream streams are deleted at the end. */
	namespace?: string;
	/** The mesh's NATS (TRANSPORTER), where those streams are. */
	transporter?: string;
	natsCa?: string;
}
