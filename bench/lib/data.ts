// Test data: Brazilian-looking addresses, payload B, shuffles, and seeding through the API in parallel.
import { randomInt } from "node:crypto";
import { ASSET_TYPES, INCOME_SOURCES } from "../../lib/base-b/catalog";
import { formatDate, todayIso } from "../../lib/dates";

export const STREETS = ["Rua das Flores", "Avenida Paulista", "Rua Augusta", "Travessa São Bento", "Rua XV de Novembro"];
export const CITIES = ["São Paulo - SP", "Recife - PE", "Curitiba - PR", "Belo Horizonte - MG", "Porto Alegre - RS"];

export const pick = <T>(xs: readonly T[]): T => xs[randomInt(xs.length)];

export function shuffled<T>(xs: T[]): T[] {
	const out = [...xs];
	for (let i = out.length - 1; i > 0; i--) {
		const j = randomInt(i + 1);
		[out[i], out[j]] = [out[j], out[i]];
	}
	return out;
}

const DAY_MS = 86_400_000;
const isoOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** Payload B as `PUT /api/v1/profiles/:cpf` takes it (dates `DD/MM/YYYY`). */
interface ProfilePayload {
	cpf: string;
	dataNascimento: string;
	endereco: string;
	fonteDeRenda: string;
	bens: { tipo: string; inicioPosse: string; quitado: boolean }[];
}

/**
 * A plausible payload B: born 1945 up to 18 years ago, an address of letters, digits and spaces, an
 * income source and 0–4 assets of the documented vocabularies, each held since a day between the
 * birth and yesterday (UTC), so the service's date checks always pass.
 */
export function randomProfile(cpf: string, today = todayIso()): ProfilePayload {
	const todayMs = Date.parse(`${today}T00:00:00Z`);
	const earliest = Date.parse("1945-01-01T00:00:00Z");
	const latestBirth = todayMs - Math.ceil(18 * 365.25) * DAY_MS;
	const birthMs = earliest + randomInt(Math.floor((latestBirth - earliest) / DAY_MS) + 1) * DAY_MS;
	const heldDays = Math.floor((todayMs - DAY_MS - birthMs) / DAY_MS) + 1;
	const bens = Array.from({ length: randomInt(5) }, () => ({
		tipo: pick(ASSET_TYPES),
		inicioPosse: formatDate(isoOf(birthMs + randomInt(heldDays) * DAY_MS)),
		quitado: randomInt(2) === 1
	}));
	return {
		cpf,
		dataNascimento: formatDate(isoOf(birthMs)),
		endereco: `${pick(STREETS)} ${randomInt(1, 3000)} ${pick(CITIES).split(" - ")[0]}`,
		fonteDeRenda: pick(INCOME_SOURCES),
		bens
	};
}

/** Runs `one` `count` times on `parallelism` workers, printing progress every 500 (seeding through the API). */
export async function inParallel(count: number, parallelism: number, label: string, one: () => Promise<void>): Promise<void> {
	const started = Date.now();
	let next = 0;
	let done = 0;
	await Promise.all(Array.from({ length: parallelism }, async () => {
		while (next < count) {
			next++;
			await one();
			if (++done % 500 === 0) process.stdout.write(`  ${done}/${count} ${label} (${((Date.now() - started) / 1000).toFixed(0)} s)\n`);
		}
	}));
}
