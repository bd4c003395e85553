// A benchmark's life cycle: the state it must undo, a watchdog and the signals around its main, and the
// clean-up every benchmark starts with.
import { revokeConsumer } from "./http";
import type { BenchState } from "./state";
import { removeMeshStreams, stopMesh } from "./mesh";
import { alive } from "./processes";

/**
 * Runs main, then cleanup, and exits; cleanup also runs on an error, Ctrl-C / SIGTERM and when the
 * watchdog fires after budgetMs. No mesh process outlives this one.
 */
export function runMain(state: BenchState, o: { budgetMs: number; main: () => Promise<void>; cleanup: () => Promise<void> }): void {
	process.on("exit", () => state.children.forEach(c => alive(c) && c.kill("SIGKILL")));
	for (const signal of ["SIGINT", "SIGTERM"] as const) {
		process.once(signal, () => {
			console.error(`\n${signal}: stopping the mesh and leaving`);
			void o.cleanup().finally(() => process.exit(130));
		});
	}
	const watchdog = setTimeout(() => {
		console.error(`benchmark overran its ${Math.round(o.budgetMs / 1000)} s budget; stopping`);
		void o.cleanup().finally(() => process.exit(1));
	}, o.budgetMs);
	watchdog.unref();
	o.main()
		.then(() => o.cleanup())
		.then(() => process.exit(0))
		.catch(async err => {
			console.error(`benchmark failed: ${err instanceof Error ? err.message : String(err)}`);
			await o.cleanup();
			process.exit(1);
		});
}

/** The common first steps of cleanup: stop the load, the observer, revoke the consumer, stop the mesh. */
export async function stopEverything(state: BenchState): Promise<void> {
	state.cannon?.stop();
	await state.observer?.stop().catch(() => undefined);
	if (state.children.some(alive)) await revokeConsumer(state);
	await stopMesh(state);
	await removeMeshStreams(state).catch(err => console.error(`could not delete the mesh's JetStream streams: ${err.message}`));
}
