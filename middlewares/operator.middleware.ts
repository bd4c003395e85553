import { hostname, userInfo } from "node:os";
import type { CallingOptions, Middleware } from "moleculer";
import { operatorToken } from "./zero-trust.middleware";

/** Who is at the keyboard, as the audit log names them: `operator:<os user>@<host>`. */
export function operatorId(): string {
	let user: string;
	try {
		user = userInfo().username;
	} catch {
		user = process.env.USER ?? process.env.LOGNAME ?? `uid-${process.getuid?.() ?? "unknown"}`;
	}
	// audit.append takes at most 100 characters.
	return `operator:${user}@${hostname()}`.slice(0, 100);
}

/** The consumer every call from the REPL carries, so audit rows name the operator. */
export function operatorConsumer(): { id: string; name: string } {
	return { id: operatorId(), name: "repl" };
}

/**
 * Gives every call this broker makes an operator's caller token, signed with the operators' key (which
 * only operators hold): the custom commands and the built-in `call`/`dcall`/`mcall` alike. It replaces
 * a token given with `--#callerToken`; the audit log names the operator from the token.
 */
export function OperatorMiddleware(consumer = operatorConsumer()): Middleware {
	let token = { text: "", until: 0 };
	const current = () => {
		if (token.until <= Date.now()) token = { text: operatorToken(consumer.id), until: Date.now() + 30_000 };
		return token.text;
	};
	return {
		name: "ReplOperator",
		call(next: (actionName: string, params?: unknown, opts?: CallingOptions) => Promise<unknown>) {
			return (actionName: string, params?: unknown, opts: CallingOptions = {}) =>
				next(actionName, params, { ...opts, meta: { ...opts.meta, callerToken: current() } });
		}
	} as unknown as Middleware;
}
