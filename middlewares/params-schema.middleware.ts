import type { Middleware } from "moleculer";
import { paramsSchema } from "../lib/openapi";

/**
 * Gives every action with params a `paramsSchema`: its parameters as plain JSON Schema, made on the
 * node that owns the action. The gateway builds /openapi.json from these, so the document is the same
 * whether a service runs in the gateway's process or across NATS (FV params do not survive the trip:
 * patterns arrive as {} and reused rules vanish).
 */
export const ParamsSchemaMiddleware: Middleware = {
	name: "ParamsSchema",
	serviceCreating(_service: unknown, schema: { actions?: Record<string, unknown> }) {
		for (const action of Object.values(schema.actions ?? {})) {
			if (action && typeof action === "object" && "params" in action && action.params) {
				(action as { paramsSchema?: unknown }).paramsSchema = paramsSchema(action.params as Record<string, unknown>);
			}
		}
	}
} as Middleware;
