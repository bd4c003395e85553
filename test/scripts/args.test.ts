import { describe, expect, it } from "vitest";
import { parseFlags } from "../../scripts/args";

const SPEC = {
	persons: { type: "number", default: 2000 },
	rawPool: { type: "number" },
	warmup: { type: "number", default: 3, min: 0 },
	seed: { type: "number", integer: true, default: 1, min: 0, max: 10 },
	url: { type: "string", default: "http://127.0.0.1:3000" },
	key: { type: "string" },
	keepData: { type: "boolean" },
	baseAOnly: { type: "boolean", flag: "base-a" }
} as const;

describe("parseFlags", () => {
	it("gives the defaults when no flag is given", () => {
		expect(parseFlags([], SPEC)).toEqual({
			persons: 2000, rawPool: undefined, warmup: 3, seed: 1, url: "http://127.0.0.1:3000", key: undefined, keepData: false, baseAOnly: false
		});
	});

	it("reads `--name value` and `--name=value`, kebab-case flags and named ones", () => {
		const flags = parseFlags(["--persons", "5", "--raw-pool=7", "--warmup", "0", "--seed=10", "--url", "http://x", "--key=k", "--keep-data", "--base-a"], SPEC);
		expect(flags).toEqual({ persons: 5, rawPool: 7, warmup: 0, seed: 10, url: "http://x", key: "k", keepData: true, baseAOnly: true });
	});

	it.each([
		[["--persons", "abc"], "--persons must be a number >= 1 (got 'abc')"],
		[["--warmup=-1"], "--warmup must be a number >= 0 (got '-1')"],
		[["--seed", "1.5"], "--seed must be an integer from 0 to 10 (got '1.5')"],
		[["--seed", "11"], "--seed must be an integer from 0 to 10 (got '11')"],
		[["--persons"], "argument missing"],
		[["--help"], "Unknown option '--help'"],
		[["--keep-data=yes"], "does not take an argument"]
	])("refuses %j", (argv, message) => {
		expect(() => parseFlags(argv, SPEC)).toThrow(message);
	});
});
