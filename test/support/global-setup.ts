import { Sequelize } from "sequelize";
import { migrate } from "../../migrations";

/** A clean test database at every run: drop everything the owner has, then migrate. */
export default async function setup(): Promise<void> {
	const ownerUrl = process.env.POSTGRES_OWNER_URL ?? (await import("node:fs")).readFileSync(process.env.POSTGRES_OWNER_URL_FILE!, "utf8").trim();
	const sequelize = new Sequelize(ownerUrl, { logging: false });
	await sequelize.query("DROP SCHEMA public CASCADE; CREATE SCHEMA public;");
	await sequelize.close();
	await migrate(ownerUrl);
}
