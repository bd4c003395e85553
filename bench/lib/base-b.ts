// Base B as the benchmarks reach it: the `profiles` collection through FerretDB, and the PostgreSQL
// database FerretDB stores it in.
import { type Collection, MongoClient } from "mongodb";

/** The `profiles` collection (mixins/base-b.mixin.ts) with the driver the services use, `poolSize` connections. */
export async function profilesCollection(mongoUrl: string, poolSize: number): Promise<{ client: MongoClient; profiles: Collection }> {
	// The adapter's options (mixins/base-b.mixin.ts) but the pool size.
	const client = await MongoClient.connect(mongoUrl, { useUnifiedTopology: true, serverSelectionTimeoutMS: 2000, connectTimeoutMS: 2000, socketTimeoutMS: 30_000, poolSize });
	return { client, profiles: client.db().collection("profiles") };
}

/**
 * The PostgreSQL database FerretDB stores Base B in, as the role FerretDB opens it with (the Mongo
 * URL's user: FerretDB passes the client's credentials on), so its sessions can be sampled.
 */
export function ferretStorageUrl(mongoUrl: string, postgresUrl: string): string {
	const m = new URL(mongoUrl);
	const p = new URL(postgresUrl);
	p.username = m.username;
	p.password = m.password;
	p.pathname = "/credit_ferret";
	p.search = "";
	return p.toString();
}

/**
 * Deletes the profiles a run seeded, by `_id` in batches ($in is not pushed down by FerretDB v1: each
 * batch scans). Their audit rows stay: the log is insert-only.
 */
export async function deleteSeededProfiles(profiles: Collection, ids: string[], batch = 2000): Promise<void> {
	const started = Date.now();
	let deleted = 0;
	for (let i = 0; i < ids.length; i += batch) {
		deleted += (await profiles.deleteMany({ _id: { $in: ids.slice(i, i + batch) } })).deletedCount ?? 0;
	}
	console.log(`removed the ${deleted} seeded profiles in ${((Date.now() - started) / 1000).toFixed(1)} s (--keep-data keeps them)`);
}
