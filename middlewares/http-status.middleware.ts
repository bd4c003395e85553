import type { Context, Middleware } from "moleculer";
import { API_PREFIX, ROUTES, type GatewayRoute, type ResultFields } from "../lib/gateway/routes";
import type { MeshLocals, MeshMeta } from "./zero-trust.middleware";

const routeByAction = new Map<string, GatewayRoute>(ROUTES.map(r => [r.action, r]));

/** `/persons/:cpf/dividas/:id` with each name taken from the answer, else from the params. */
function expand(template: string, result: ResultFields, params: ResultFields): string {
	return API_PREFIX + template.replace(/:(\w+)/g, (_m, name: string) => encodeURIComponent(String(result?.[name] ?? params?.[name] ?? "")));
}

/** The status and `Location` the route table gives an action's answer (200 and none off the table). */
export function httpAnswer(action: string, result: unknown, params: unknown, locals: { created?: boolean } = {}): { status: number; location?: string } {
	const route = routeByAction.get(action);
	if (!route) return { status: 200 };
	// The table reads answers and params by field name (anything but an object reads as having none).
	const status = route.statusOf?.(result as ResultFields, locals) ?? route.status;
	return { status, location: status === 201 && route.location ? expand(route.location, result as ResultFields, params as ResultFields) : undefined };
}

/**
 * The HTTP status and `Location` of an action behind a route come from the route table
 * (lib/gateway/routes.ts), set where the action runs, so that a stored Idempotency answer replays
 * them too. A `201` carries the route's `location`. Handlers only say what happened (`ctx.locals.created`).
 */
export const HttpStatusMiddleware = {
	name: "HttpStatus",
	localAction(handler: (ctx: Context) => Promise<unknown>, action: { name: string }) {
		const route = routeByAction.get(action.name);
		if (!route) return handler;
		return async function withStatus(ctx: Context<unknown, MeshMeta, MeshLocals>) {
			const result = await handler(ctx);
			const { status, location } = httpAnswer(action.name, result, ctx.params, ctx.locals);
			if (status !== 200) ctx.meta.$statusCode = status;
			if (location) ctx.meta.$location = location;
			return result;
		};
	}
} as unknown as Middleware;
