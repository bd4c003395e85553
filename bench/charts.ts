// Redraws every benchmark's chart from its last results (bench/results/*.json), without measuring
// anything: `npm run bench:charts`. Each benchmark also draws its own chart when it writes its results.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { writeChart } from "./lib/charts";

const ROOT = path.resolve(__dirname, "..");

async function main() {
	const dir = path.join(ROOT, "bench", "results");
	for (const file of readdirSync(dir).filter(f => f.endsWith(".json")).sort()) {
		const name = file.replace(/\.json$/, "");
		const out = await writeChart(ROOT, name, JSON.parse(readFileSync(path.join(dir, file), "utf8")));
		console.log(out ? `${name}: ${out}` : `${name}: no chart`);
	}
}

main().catch(err => {
	console.error(err);
	process.exit(1);
});
