// Each benchmark's results as an SVG chart for the README (docs/benchmarks/charts/<name>.svg): ours
// against the raw engine, and for the soak the memory of every process over time. Drawn with Vega-Lite
// (compiled to Vega and rendered headless to SVG: no browser, no canvas).
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";

/** A bar: one path of one benchmark, its value and which side (ours or the raw engine) it is. */
interface Bar { path: string; side: string; value: number }

const WIDTH = 560;
const shortPath = (p: string) => (p.length > 60 ? `${p.slice(0, 57)}…` : p);
const sideOf = (p: string) => (/^(raw|info)\b/i.test(p) ? "raw engine" : "ours");

/** Horizontal bars, ours and raw in two colours, one panel per measure. */
function barPanels(title: string, panels: { measure: string; bars: Bar[] }[]): TopLevelSpec {
	return {
		title, background: "white",
		vconcat: panels.map(({ measure, bars }) => ({
			width: WIDTH, height: { step: 22 },
			data: { values: bars.map(b => ({ ...b, path: shortPath(b.path) })) },
			mark: { type: "bar", tooltip: true },
			encoding: {
				y: { field: "path", type: "nominal", sort: null, title: null, axis: { labelLimit: 360 } },
				x: { field: "value", type: "quantitative", title: measure },
				color: { field: "side", type: "nominal", title: null, scale: { domain: ["ours", "raw engine"], range: ["#1f77b4", "#aaaaaa"] } }
			}
		}))
	} as TopLevelSpec;
}

type Json = Record<string, any>;

/** Request rate and p99 of each path of a read benchmark (persons-lookup, profile-score, activity). */
function readPanels(results: Json[]): { measure: string; bars: Bar[] }[] {
	return [
		{ measure: "requests per second (higher is better)", bars: results.map(r => ({ path: r.path, side: sideOf(r.path), value: r.reqPerSec })) },
		{ measure: "p99 latency, ms (lower is better)", bars: results.map(r => ({ path: r.path, side: sideOf(r.path), value: r.p99 })) }
	];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** The chart of one benchmark's results file, or null when the benchmark has none. */
export function chartSpec(name: string, data: Json): TopLevelSpec | null {
	// Which run this is: the README's tables may quote another run, the chart always shows the last one.
	const at = `${String(data.at ?? "").slice(0, 10)}, commit ${data.code?.head ?? "?"}, ${data.machine?.cpus ?? "?"} cores`;
	switch (name) {
		case "persons-lookup":
			return barPanels(`GET /persons/:cpf against raw pg (${at})`, readPanels(data.results));
		case "profile-score":
			return barPanels(`GET /profiles/:cpf/score against the raw driver (${at})`, readPanels(data.results));
		case "ml-export":
			return barPanels(`GET /ml/features against a raw cursor (${at})`, [{
				measure: "rows per second, median of the runs (higher is better)",
				bars: data.results.map((r: Json) => ({ path: r.path, side: sideOf(r.path), value: median(r.runs.map((x: Json) => x.rows / x.seconds)) }))
			}]);
		case "ingest":
			return barPanels(`POST /transactions until searchable, and GET /activity (${at})`, [
				{
					measure: "movements per second until searchable (higher is better)",
					bars: Object.values(data.ingest as Record<string, Json>).filter(s => s?.path && s.movementsPerSec).map(s => ({ path: s.path, side: sideOf(s.path), value: s.movementsPerSec }))
				},
				...readPanels(data.read)
			]);
		case "abuse":
			return barPanels(`Hostile traffic: what each attack cost (${at})`, [
				{ measure: "peak heap growth, MiB (target < 64)", bars: data.results.flatMap((r: Json) => Object.entries(r.heapGrowthMiB).map(([proc, v]) => ({ path: `${r.attack} — ${proc}`, side: "ours", value: v as number }))) },
				{ measure: "longest event-loop stall, ms (target < 100)", bars: data.results.flatMap((r: Json) => Object.entries(r.maxDelayMs).map(([proc, v]) => ({ path: `${r.attack} — ${proc}`, side: "ours", value: v as number }))) },
				{ measure: "valid lookups' p99 against idle (target < 3×)", bars: data.results.map((r: Json) => ({ path: r.attack, side: "ours", value: r.lookups.p99Ratio })) }
			]);
		case "webhooks":
			return barPanels(`Webhooks: write → signed delivery, against signed POSTs in a loop (${at})`, [{
				measure: "deliveries per second (higher is better)",
				bars: Object.entries(data.results as Record<string, Json>).flatMap(([subs, r]) => [
					{ path: `mesh, ${subs} subscription(s)`, side: "ours", value: r.mesh.deliveriesPerSec },
					{ path: `raw loop, ${subs} subscription(s)`, side: "raw", value: r.raw.deliveriesPerSec }
				])
			}]);
		case "batch": {
			const n = data.params?.persons ?? data.params?.cpfs ?? 10_000;
			const rate = (seconds: number) => n / seconds;
			return barPanels(`Batch screening: ${n} CPFs (${at})`, [{
				measure: "CPFs per second (higher is better)",
				bars: [
					{ path: "POST /scores/batch (one streamed request)", side: "ours", value: rate(data.results.batchSeconds) },
					{ path: "GET /scores/:cpf, one call per CPF", side: "ours", value: (data.params?.singles ?? n) / data.results.singleSeconds },
					...(data.results.singleRawSeconds ? [{ path: "raw reads of one score, per CPF", side: "raw engine", value: (data.params?.singles ?? n) / data.results.singleRawSeconds }] : []),
					{ path: "raw set-based reads of the three engines", side: "raw engine", value: rate(data.results.rawSeconds) },
					...(data.results.reportSeconds ? [
						{ path: "POST /reports/batch (one streamed request)", side: "ours", value: rate(data.results.reportSeconds) },
						{ path: "raw set-based report reads", side: "raw engine", value: rate(data.results.reportRawSeconds) }
					] : [])
				]
			}]);
		}
		case "soak":
			return {
				title: `Soak: memory of every mesh process over the run (${at})`, background: "white", width: WIDTH, height: 260,
				data: { values: (data.memory as Json[]).flatMap(p => (p.samples as Json[]).map(s => ({ process: p.name, minutes: s.tMs / 60_000, rss: s.rssMiB }))) },
				mark: { type: "line", tooltip: true },
				encoding: {
					x: { field: "minutes", type: "quantitative", title: "minutes into the run" },
					y: { field: "rss", type: "quantitative", title: "resident memory, MiB" },
					color: { field: "process", type: "nominal", title: "process" }
				}
			} as TopLevelSpec;
		default:
			return null;
	}
}

/** Renders a Vega-Lite spec to SVG text, headless. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
	const view = new vega.View(vega.parse(compile(spec).spec), { renderer: "none" });
	try {
		return await view.toSVG();
	} finally {
		view.finalize();
	}
}

/** Writes docs/benchmarks/charts/<name>.svg from a results object; returns its path, or null without a chart. */
export async function writeChart(root: string, name: string, data: Json): Promise<string | null> {
	const spec = chartSpec(name, data);
	if (!spec) return null;
	const dir = path.join(root, "docs", "benchmarks", "charts");
	mkdirSync(dir, { recursive: true });
	const out = path.join(dir, `${name}.svg`);
	writeFileSync(out, await renderSvg(spec));
	return path.relative(root, out);
}
