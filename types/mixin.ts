import type { ServiceSchema, ServiceSettingSchema } from "moleculer";

/**
 * A mixin's schema as it is written and checked: its handlers see `this` as a Service with TThis (what
 * the mixin adds to it, and what it uses of the mixins it mixes in).
 */
export type MixinSchema<TThis, TSettings = ServiceSettingSchema> = Partial<ServiceSchema<TSettings, TThis, object>>;

/**
 * A mixin as `mixins: [...]` takes it. Moleculer types that list without `this` (Partial<ServiceSchema>),
 * and a schema whose handlers need a `this` of their own is not assignable to it: each mixin is checked
 * as a MixinSchema, then handed over as a Mixin (`as unknown as Mixin`, once, where it is exported).
 * Services do the same: typed as ServiceSchema<TSettings, TMethods, TVars>, exported as a plain
 * ServiceSchema, which is what moleculer-runner and the tests' lists of services take.
 */
export type Mixin = Partial<ServiceSchema>;
