import { Sequelize } from "sequelize";
import { SequelizeStorage, Umzug } from "umzug";
import { baseA } from "./001-base-a";
import { idempotencyOwner } from "./002-idempotency-owner";
import { debtOwner } from "./003-debt-owner";
import { idempotencyCpf } from "./004-idempotency-cpf";
import { auditActionNames } from "./005-audit-action-names";
import { consumerPurposes } from "./010-consumer-purposes";
import { consultationsScope } from "./011-consultations-scope";
import { erasures } from "./025-erasures";
import { rateBuckets } from "./026-rate-buckets";
import { webhooks } from "./030-webhooks";
import { rateBucketLeases } from "./031-rate-bucket-leases";
import { auditKeyedChain } from "./020-audit-keyed-chain";
import { idempotencyClaim } from "./021-idempotency-claim";

import { followPrimary, parsePostgresUrl } from "../lib/base-a/primary";
import type { Migration, RunSql } from "./migration";

/** Every migration, in order. Add new ones at the end; never edit one that has shipped. */
export const migrations: Migration[] = [baseA, idempotencyOwner, debtOwner, idempotencyCpf, auditActionNames, consumerPurposes, consultationsScope, auditKeyedChain, idempotencyClaim, erasures, rateBuckets, webhooks, rateBucketLeases];

/**
 * Brings Base A's schema up to date with the owner role's URL (the application's role may not
 * change the schema). An advisory lock lets several processes start at once.
 */
export async function migrate(ownerUrl: string, log: (msg: string) => void = () => {}): Promise<string[]> {
	const target = parsePostgresUrl(ownerUrl);
	const sequelize = new Sequelize(target.url, { ...followPrimary(target), logging: false });
	try {
		const run: RunSql = sql => sequelize.query(sql);
		await sequelize.query("SELECT pg_advisory_lock(hashtext('credit-mesh-migrations'))");
		const umzug = new Umzug({
			migrations,
			context: () => run, // umzug calls a function context to build it
			storage: new SequelizeStorage({ sequelize, tableName: "schema_migrations" }),
			logger: undefined
		});
		const done = await umzug.up();
		for (const m of done) log(`migrated ${m.name}`);
		return done.map(m => m.name);
	} finally {
		await sequelize.close();
	}
}
