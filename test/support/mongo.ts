import { MongoClient, type Db } from "mongodb";
import { config, need } from "../../config";

/** Direct access to Base B with the raw driver: what someone reading the collection would see. */
export async function withMongo<T>(work: (db: Db) => Promise<T>): Promise<T> {
	const client = new MongoClient(need(config, "mongoUrl"), { useUnifiedTopology: true, serverSelectionTimeoutMS: 5000 } as any);
	await client.connect();
	try {
		return await work(client.db());
	} finally {
		await client.close();
	}
}

/** A digest of the profiles collection, to show a rejected request changed nothing. */
export function profilesDigest(): Promise<string> {
	return withMongo(async db => JSON.stringify(await db.collection("profiles").find({}).sort({ _id: 1 }).toArray()));
}
