/**
 * The service groups of the mesh, as `docker-stack.yml` deploys them (one `SERVICES` list per group).
 * A group is the unit of trust: it has its own signing key and NATS user, and each action names the
 * groups that may call it (`callers`). `operators` runs no service: it is the REPL.
 */
export const GROUPS = {
	api: ["api"],
	"base-a": ["persons", "cpf-lookup", "debt-write", "audit", "consumers", "idempotency", "events-relay", "monitoring", "webhook-deliveries"],
	"base-b": ["profiles", "asset-score", "ml-export", "score-history"],
	// Base C's Elasticsearch writer and reader: holds Elasticsearch's credential, never the key nor a CPF.
	"base-c": ["transaction-writer", "activity"],
	// Base C's front: holds PSEUDONYM_KEY and no Elasticsearch credential; turns CPFs into pseudonyms
	// (movements in, reads by CPF) before anything reaches base-c (docs/base-c.md, "Who holds what").
	"base-c-front": ["transaction-ingest", "activity-front"],
	report: ["report", "credit-score"],
	privacy: ["privacy"],
	operators: []
} as const satisfies Record<string, readonly string[]>;

export type Group = keyof typeof GROUPS;

/** The groups that run services (one moleculer-runner each, `SERVICES` = their list): all but operators. */
export type ServiceGroup = Exclude<Group, "operators">;
export const SERVICE_GROUPS = Object.fromEntries(
	(Object.entries(GROUPS) as [Group, readonly string[]][]).filter(([, services]) => services.length > 0)
) as Record<ServiceGroup, readonly string[]>;

export const GROUP_NAMES = Object.keys(GROUPS) as Group[];

/** The group that signs caller tokens for API keys: it holds Base A's consumers. */
export const TOKEN_ISSUER: Group = "base-a";

const groupByService = new Map<string, Group>(
	(Object.entries(GROUPS) as [Group, readonly string[]][]).flatMap(([group, services]) => services.map(s => [s, group] as const))
);

/** The group a service belongs to (by its name, or an action's `service.action` name). */
export function groupOf(serviceOrAction: string | undefined | null): Group | undefined {
	if (!serviceOrAction) return undefined;
	const dot = serviceOrAction.indexOf(".");
	return groupByService.get(dot < 0 ? serviceOrAction : serviceOrAction.slice(0, dot));
}

export function isGroup(name: string): name is Group {
	return Object.hasOwn(GROUPS, name);
}
