import { readFileSync } from "node:fs";
import { Client } from "@elastic/elasticsearch";
import { MongoClient } from "mongodb";
import { Sequelize } from "sequelize";
import { migrate } from "../../migrations";

const setting = (name: string) => process.env[name] ?? readFileSync(process.env[`${name}_FILE`]!, "utf8").trim();

/** Clean test bases at every run: Base A dropped and migrated, Base B's test database and Base C's test indices dropped. */
export default async function setup(): Promise<void> {
	const ownerUrl = setting("POSTGRES_OWNER_URL");
	const sequelize = new Sequelize(ownerUrl, { logging: false });
	await sequelize.query("DROP SCHEMA public CASCADE; CREATE SCHEMA public;");
	await sequelize.close();
	await migrate(ownerUrl);

	const mongo = new MongoClient(setting("MONGO_URL"), { useUnifiedTopology: true, serverSelectionTimeoutMS: 5000 } as any);
	await mongo.connect();
	await mongo.db().dropDatabase();
	await mongo.close();

	const es = new Client({ node: setting("ELASTICSEARCH_URL") });
	const prefix = process.env.ES_INDEX_PREFIX ?? "credit-test";
	await es.indices.delete({ index: `${prefix}-*`, ignore_unavailable: true, allow_no_indices: true });
	await es.indices.deleteIndexTemplate({ name: `${prefix}-*` }).catch(() => undefined);
	await es.close();
}
