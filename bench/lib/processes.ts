// Child processes of a benchmark (and of the replicated test mesh): started with their output in a log
// file, stopped with a grace period, and a free port to give them.
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { createServer } from "node:net";

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const srv = createServer();
		srv.unref();
		srv.on("error", reject);
		srv.listen(0, "127.0.0.1", () => {
			const addr = srv.address();
			srv.close(() => (addr && typeof addr === "object" ? resolve(addr.port) : reject(new Error("no port"))));
		});
	});
}

/** A long-running child whose stdout and stderr go to a log file. */
export function spawnLogged(cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd: string, logFile: string): ChildProcess {
	const fd = openSync(logFile, "a");
	try {
		return spawn(cmd, args, { cwd, env, stdio: ["ignore", fd, fd] });
	} finally {
		closeSync(fd);
	}
}

export function alive(child: ChildProcess): boolean {
	return child.exitCode === null && child.signalCode === null;
}

/** SIGTERM, then SIGKILL if it is still there after graceMs. */
export async function stopChild(child: ChildProcess, graceMs = 8000): Promise<void> {
	if (!alive(child)) return;
	const exited = new Promise<void>(resolve => child.once("exit", () => resolve()));
	child.kill("SIGTERM");
	const timer = setTimeout(() => alive(child) && child.kill("SIGKILL"), graceMs);
	await exited;
	clearTimeout(timer);
}

export function tail(file: string, lines = 30): string {
	try {
		return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
	} catch {
		return "";
	}
}
