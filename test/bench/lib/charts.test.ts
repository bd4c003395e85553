import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { chartSpec, renderSvg } from "../../../bench/lib/charts";

// Each benchmark's results file, as the last run wrote it (bench/results/*.json), drawn as the README shows it.
const RESULTS = path.resolve(__dirname, "../../../bench/results");
const files = readdirSync(RESULTS).filter(f => f.endsWith(".json")).sort();

describe("benchmark charts", () => {
	it("every results file has a chart", () => {
		expect(files.length).toBeGreaterThan(0);
		for (const file of files) expect(chartSpec(file.replace(/\.json$/, ""), JSON.parse(readFileSync(path.join(RESULTS, file), "utf8"))), file).not.toBeNull();
	});

	it.each(files)("%s draws as an SVG that names what was measured", async file => {
		const name = file.replace(/\.json$/, "");
		const data = JSON.parse(readFileSync(path.join(RESULTS, file), "utf8"));
		const svg = await renderSvg(chartSpec(name, data)!);
		expect(svg.startsWith("<svg")).toBe(true);
		// The labels the chart must carry: each path of a comparison, each process of the soak.
		const labels: string[] = name === "soak" ? data.memory.map((p: any) => p.name)
			: name === "abuse" ? data.results.map((r: any) => r.attack.slice(0, 20))
				: name === "ingest" ? [data.read[0].path.slice(0, 20)]
					: name === "batch" ? ["POST /scores/batch"]
					: name === "webhooks" ? Object.keys(data.results).map((n: string) => `mesh, ${n} subscription`)
					: data.results.map((r: any) => r.path.slice(0, 20));
		for (const label of labels) expect(svg, label).toContain(label.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;"));
	});

	it("has no chart for a benchmark it does not know", () => {
		expect(chartSpec("no-such-benchmark", {})).toBeNull();
	});
});
