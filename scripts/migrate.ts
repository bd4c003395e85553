// Brings Base A's schema up to date: `npm run migrate` (the start script and the tests call it too).
import { config, need } from "../config";
import { migrate } from "../migrations";

migrate(need(config, "postgresOwnerUrl"), msg => console.log(msg))
	.then(done => console.log(done.length ? `Base A schema: ${done.length} migration(s) applied` : "Base A schema is up to date"))
	.catch(err => {
		console.error(`Migration failed: ${err.message}`);
		process.exit(1);
	});
