import type { Group } from "../config/groups";
import type { Scope } from "../lib/scopes";
import type { AuditDeclaration } from "../middlewares/audit.middleware";
import type { ChannelConsumer, Channels } from "../middlewares/channels.middleware";
import type { StreamKey } from "../lib/mesh/streams";

/**
 * The custom action properties of credit-mesh, each enforced by a middleware on every node
 * (middlewares/), so that handlers hold only their own logic.
 */
declare module "moleculer" {
	interface ActionSchema {
		/**
		 * The groups whose nodes may call this action over the mesh (config/groups.ts). Required on
		 * every action that is not private: a node refuses to start a service with an undeclared one.
		 */
		callers?: readonly Group[];
		/** The call must carry a valid caller token holding one of these scopes (`[]`: any valid caller). */
		scopes?: readonly Scope[];
		/** Every call leaves an audit row under the action's name (`true`, or when: middlewares/audit.middleware.ts). */
		audit?: AuditDeclaration;
		/** A consultation of the CPF in the params (middlewares/consultation.middleware.ts). */
		consultation?: boolean;
		/** Added at start by ParamsSchemaMiddleware: the params as JSON Schema, for /openapi.json. */
		paramsSchema?: unknown;
	}

	interface ServiceSchema {
		/** The durable consumers this service runs, by the stream they read (middlewares/channels.middleware.ts). */
		channels?: Partial<Record<StreamKey, ChannelConsumer>>;
	}

	interface ServiceBroker {
		/** Publishing on the mesh's durable channels (middlewares/channels.middleware.ts). */
		channels: Channels;
	}
}
