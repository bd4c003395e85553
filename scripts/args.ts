import { parseArgs } from "node:util";

/** `--name N`; below min (1 unless given) or above max is refused, and a fraction too where integer. */
interface NumberFlag { type: "number"; default?: number; min?: number; max?: number; integer?: boolean }
interface StringFlag { type: "string"; default?: string }
/** Present or not (`--name`). */
interface BooleanFlag { type: "boolean" }
/** The flag is the key in kebab case (`rawPool` → `--raw-pool`) unless `flag` names it. */
type FlagSpec = (NumberFlag | StringFlag | BooleanFlag) & { flag?: string };

type FlagValue<S> = S extends { type: "boolean" } ? boolean
	: S extends { type: "number"; default: number } ? number
	: S extends { type: "number" } ? number | undefined
	: S extends { type: "string"; default: string } ? string
	: string | undefined;

type Flags<T extends Record<string, FlagSpec>> = { [K in keyof T]: FlagValue<T[K]> };

/**
 * The command line's flags as `spec` declares them, by node:util's parseArgs (`--name value` or
 * `--name=value`): an unknown flag, a missing value or a number out of range is an error.
 */
export function parseFlags<const T extends Record<string, FlagSpec>>(argv: string[], spec: T): Flags<T> {
	const flagOf = (key: string) => spec[key].flag ?? key.replace(/[A-Z]/g, c => `-${c.toLowerCase()}`);
	const options = Object.fromEntries(Object.entries(spec).map(([key, s]) => [flagOf(key), { type: s.type === "boolean" ? "boolean" : "string" } as const]));
	const { values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false });
	return Object.fromEntries(Object.entries(spec).map(([key, s]) => {
		const raw = values[flagOf(key)];
		if (s.type === "boolean") return [key, raw === true];
		if (typeof raw !== "string") return [key, s.default];
		return [key, s.type === "number" ? numberOf(flagOf(key), raw, s) : raw];
	})) as Flags<T>;
}

function numberOf(flag: string, raw: string, s: NumberFlag): number {
	const value = Number(raw);
	const min = s.min ?? 1;
	const max = s.max ?? Infinity;
	if (Number.isFinite(value) && value >= min && value <= max && (!s.integer || Number.isInteger(value))) return value;
	const range = s.max === undefined ? `>= ${min}` : `from ${min} to ${s.max}`;
	throw new Error(`--${flag} must be ${s.integer ? "an integer" : "a number"} ${range} (got '${raw}')`);
}
