/** Every scope an API key can hold (DESIGN.md section 3). */
export const SCOPES = [
	"persons:read", "persons:write", "debts:write", "debts:admin",
	"profiles:read", "profiles:write", "score:read", "ml:export",
	"transactions:write", "activity:read", "reports:read",
	"privacy:admin", "audit:read", "consumers:admin", "consultations:read",
	"monitoring:read", "monitoring:write"
] as const;

export type Scope = (typeof SCOPES)[number];

/** The consumer id of the key bootstrapped from ADMIN_API_KEY. */
export const BOOTSTRAP_ADMIN_ID = "00000000-0000-4000-8000-000000000001";
