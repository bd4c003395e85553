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
		/** A consultation of the CPF in the params; "batch": of many, published by the action per chunk (middlewares/consultation.middleware.ts). */
		consultation?: boolean | "batch";
		/** Added at start by ParamsSchemaMiddleware: the params as JSON Schema, for /openapi.json. */
		paramsSchema?: unknown;
	}

	// The type parameters must be Moleculer's own, names included, to merge (TThis: `this` in the schema's handlers).
	// eslint-disable-next-line @typescript-eslint/no-unused-vars
	interface ServiceSchema<TSettings, TMethods, TVars, TThis> {
		/** The durable consumers this service runs, by the stream they read (middlewares/channels.middleware.ts). */
		channels?: Partial<Record<StreamKey, ChannelConsumer<unknown, TThis>>>;
		/** Moleculer calls it once the mixins are merged, with the merged schema (missing from its types). */
		merged?(this: TThis, schema: ServiceSchema): void;
		/** moleculer-db calls it once the adapter is connected (its types keep it off the schema). */
		afterConnected?(this: TThis): Promise<void>;
	}

	interface ServiceBroker {
		/** Publishing on the mesh's durable channels (middlewares/channels.middleware.ts). */
		channels: Channels;
	}
}
