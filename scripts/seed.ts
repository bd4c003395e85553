// `npm run seed -- --persons N`: fills the three bases of a running mesh THROUGH ITS API with
// synthetic Brazilian data (valid CPFs, names, addresses, debts, a profile, card purchases and
// movements). Everything about person i comes from a PRNG seeded by (--seed, i), so a second run sends
// the same data: POST /persons and each debt carry an Idempotency-Key (a resend gets the stored answer;
// once that has expired the person answers 409 and its debts are skipped), PUT /profiles replaces, and
// every movement has a stable `id`. Options: --persons N (100), --seed S (1), --url (http://127.0.0.1:3000),
// --key (else ADMIN_API_KEY, ADMIN_API_KEY_FILE, .data/secrets/admin_api_key), --concurrency C (8),
// --print-cpfs (print the CPFs of persons 0..N-1 and exit, no traffic).
// Ctrl-C stops starting persons, lets the ones in flight finish, prints the summary and exits 130.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseFlags } from "./args";
import { normalizeCpf, withCheckDigits } from "../lib/cpf";
import { formatDate, todayIso } from "../lib/dates";
import { ASSET_TYPES, INCOME_SOURCES } from "../lib/base-b/catalog";
import { MOVEMENT_TYPES } from "../lib/base-c/movement";

// ---------------------------------------------------------------- deterministic generator

/** mulberry32: a small, fast, seedable PRNG returning [0, 1). */
export function mulberry32(a: number): () => number {
	return () => {
		a = (a + 0x6d2b79f5) | 0;
		let t = Math.imul(a ^ (a >>> 15), 1 | a);
		t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
}

function fnv1a(text: string): number {
	let h = 0x811c9dc5;
	for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
	return h >>> 0;
}

const FEMALE_NAMES = [
	"Ana", "Maria", "Francisca", "Antônia", "Adriana", "Juliana", "Márcia", "Fernanda", "Patrícia", "Aline",
	"Beatriz", "Camila", "Larissa", "Letícia", "Gabriela", "Luíza", "Débora", "Cláudia", "Sônia", "Raquel"
];
const MALE_NAMES = [
	"José", "João", "Antônio", "Francisco", "Carlos", "Paulo", "Pedro", "Lucas", "Luiz", "Marcos",
	"Luís", "Gabriel", "Rafael", "Daniel", "Marcelo", "Bruno", "Eduardo", "Felipe", "Raimundo", "Rodrigo",
	"Thiago", "Mateus", "Vinícius", "Gustavo", "Leonardo", "André", "Fábio", "Sérgio", "Márcio", "Otávio"
];
const SURNAMES = [
	"Silva", "Santos", "Oliveira", "Souza", "Rodrigues", "Ferreira", "Alves", "Pereira", "Lima", "Gomes",
	"Costa", "Ribeiro", "Martins", "Carvalho", "Almeida", "Lopes", "Soares", "Fernandes", "Vieira", "Barbosa",
	"Rocha", "Dias", "Nascimento", "Andrade", "Moreira", "Nunes", "Marques", "Machado", "Mendes", "Freitas",
	"Cardoso", "Ramos", "Gonçalves", "Santana", "Teixeira", "Araújo", "Conceição", "Magalhães", "Brandão", "Assunção"
];
const STREET_KINDS = ["Rua", "Rua", "Rua", "Avenida", "Travessa"];
const STREET_NAMES = [
	"das Flores", "XV de Novembro", "Sete de Setembro", "Tiradentes", "Dom Pedro II", "Getúlio Vargas", "Santos Dumont",
	"Rui Barbosa", "Marechal Deodoro", "José Bonifácio", "das Palmeiras", "dos Andradas", "Castro Alves", "Machado de Assis",
	"Princesa Isabel", "Barão do Rio Branco", "São João", "Brasil", "Independência", "Afonso Pena", "Presidente Vargas"
];
const BAIRROS = ["Centro", "Boa Vista", "Jardim América", "Vila Nova", "Santa Cecília", "Boa Viagem", "Copacabana", "Savassi", "Batel", "Moinhos de Vento", "Liberdade", "Aldeota", "Pituba", "Ponta Verde"];
const CITIES = ["São Paulo", "Rio de Janeiro", "Belo Horizonte", "Salvador", "Fortaleza", "Recife", "Curitiba", "Porto Alegre", "Manaus", "Belém", "Goiânia", "Campinas", "São Luís", "Maceió", "Natal", "Florianópolis"];
const CREDITORS = ["Banco do Brasil", "Caixa Econômica Federal", "Itaú Unibanco", "Bradesco", "Santander", "Nubank", "Banco Inter", "Casas Bahia", "Magazine Luiza", "Vivo", "Claro", "Enel", "Sabesp", "Renner"];
const MOVEMENT_OTHERS = MOVEMENT_TYPES.filter(t => t !== "cartao");

const DAY_MS = 86_400_000;
const isoOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const msOf = (iso: string) => Date.parse(`${iso}T00:00:00Z`);
/** Debts and movements are dated in a fixed window, so they do not change from one day's run to the next. */
const WINDOW_START = msOf("2020-01-01");
const WINDOW_END = msOf("2025-10-31");

export interface SeedPerson {
	cpf: string;
	nome: string;
	endereco: string;
	dividas: { valor: number; empresa: string; dataVencimento: string; datePagamento?: string }[];
	profile: { dataNascimento: string; endereco: string; fonteDeRenda: string; bens: { tipo: string; inicioPosse: string; quitado: boolean }[] };
	movements: { cpf: string; tipo: string; valor: number; data: string; id: string }[];
}

/** Person i of seed S: the same input gives the same person (dates of the profile move with `today`). */
export function generatePerson(seed: number, i: number, today = todayIso()): SeedPerson {
	const rnd = mulberry32(fnv1a(`credit-mesh-seed:${seed}:${i}`));
	const int = (min: number, max: number) => min + Math.floor(rnd() * (max - min + 1)); // inclusive
	const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
	const money = (min: number, max: number) => Math.max(0.01, Math.round((min + rnd() * (max - min)) * 100) / 100);
	const todayMs = msOf(today);
	const windowEnd = Math.min(WINDOW_END, todayMs);
	const dayIn = (fromMs: number, toMs: number) => fromMs + int(0, Math.max(0, Math.floor((toMs - fromMs) / DAY_MS))) * DAY_MS;

	let cpf: string | null = null;
	while (!cpf) {
		let base = "";
		for (let k = 0; k < 9; k++) base += String(int(0, 9));
		cpf = normalizeCpf(withCheckDigits(base));
	}
	const names = rnd() < 0.5 ? FEMALE_NAMES : MALE_NAMES;
	const first = rnd() < 0.3 ? `${pick(names)} ${pick(names)}` : pick(names);
	const nome = `${first} ${pick(SURNAMES)} ${pick(SURNAMES)}`;
	const endereco = `${pick(STREET_KINDS)} ${pick(STREET_NAMES)}, ${int(1, 3999)} - ${pick(BAIRROS)}, ${pick(CITIES)}`;

	const dividas = Array.from({ length: int(0, 4) }, () => {
		const dueMs = dayIn(WINDOW_START, windowEnd);
		const debt: SeedPerson["dividas"][number] = { valor: money(50, 15_000), empresa: pick(CREDITORS), dataVencimento: formatDate(isoOf(dueMs)) };
		if (rnd() < 0.4) debt.datePagamento = formatDate(isoOf(Math.min(todayMs, dueMs + int(-20, 90) * DAY_MS)));
		return debt;
	});

	const birthMs = todayMs - int(Math.ceil(18 * 365.25) + 1, Math.floor(80 * 365.25) - 1) * DAY_MS;
	// Assets are acquired from the 18th birthday (or the day after birth, for the few born too recently).
	const adultMs = Math.min(birthMs + Math.ceil(18 * 365.25) * DAY_MS, todayMs);
	const bens = Array.from({ length: int(0, 4) }, () => ({
		tipo: pick(ASSET_TYPES),
		inicioPosse: formatDate(isoOf(dayIn(adultMs, todayMs))),
		quitado: rnd() < 0.5
	}));
	const profile = { dataNascimento: formatDate(isoOf(birthMs)), endereco, fonteDeRenda: pick(INCOME_SOURCES), bens };

	const movements = Array.from({ length: int(5, 30) }, (_, j) => {
		const card = rnd() < 0.5;
		return {
			cpf,
			tipo: card ? "cartao" : pick(MOVEMENT_OTHERS),
			valor: card ? money(5, 2_000) : money(10, 8_000),
			data: formatDate(isoOf(dayIn(msOf("2024-01-01"), windowEnd))),
			id: `seed${seed}.p${i}.m${j}`
		};
	});
	return { cpf, nome, endereco, dividas, profile, movements };
}

export function seedCpfs(seed: number, persons: number): string[] {
	return Array.from({ length: persons }, (_, i) => generatePerson(seed, i).cpf);
}

// ---------------------------------------------------------------- HTTP

const MAX_ATTEMPTS = 8;

class HttpError extends Error {}

interface Client {
	url: string;
	key: string;
}

/** One request; 429/503 and network errors are retried after Retry-After (at most MAX_ATTEMPTS tries). */
async function call(c: Client, method: string, route: string, body: string | undefined, headers: Record<string, string>, ok: number[]): Promise<number> {
	for (let attempt = 1; ; attempt++) {
		let status: number;
		let text = "";
		let retryAfter: string | null = null;
		try {
			const res = await fetch(c.url + route, {
				method, body, headers: { authorization: `Bearer ${c.key}`, ...headers }, signal: AbortSignal.timeout(30_000), redirect: "error"
			});
			status = res.status;
			retryAfter = res.headers.get("retry-after");
			text = await res.text();
		} catch (err) {
			if (attempt >= MAX_ATTEMPTS) throw new HttpError(`${method} ${route}: ${(err as Error).message}`);
			await sleep(Math.min(10_000, 250 * 2 ** attempt));
			continue;
		}
		if (ok.includes(status)) return status;
		if ((status === 429 || status === 503) && attempt < MAX_ATTEMPTS) {
			const seconds = Number(retryAfter);
			await sleep(Number.isFinite(seconds) && seconds > 0 ? Math.min(30, seconds) * 1000 : Math.min(10_000, 250 * 2 ** attempt));
			continue;
		}
		throw new HttpError(`${method} ${route}: ${status} ${text.slice(0, 300)}`);
	}
}

const json = { "content-type": "application/json" };

export interface Totals {
	ok: number;
	existing: number;
	failed: number;
	debts: number;
	profiles: number;
	movements: number;
	errors: string[];
}

async function seedOne(c: Client, seed: number, p: SeedPerson, totals: Totals): Promise<void> {
	const created = await call(c, "POST", "/api/v1/persons", JSON.stringify({ cpf: p.cpf, nome: p.nome, endereco: p.endereco }),
		{ ...json, "idempotency-key": `seed${seed}.person.${p.cpf}` }, [201, 409]);
	if (created === 409) totals.existing++;
	else {
		for (const [j, d] of p.dividas.entries()) {
			await call(c, "POST", `/api/v1/persons/${p.cpf}/dividas`, JSON.stringify(d), { ...json, "idempotency-key": `seed${seed}.debt.${p.cpf}.${j}` }, [201]);
			totals.debts++;
		}
	}
	await call(c, "PUT", `/api/v1/profiles/${p.cpf}`, JSON.stringify({ cpf: p.cpf, ...p.profile }), json, [200, 201]);
	totals.profiles++;
	await call(c, "POST", "/api/v1/transactions", p.movements.map(m => JSON.stringify(m)).join("\n"), { "content-type": "application/x-ndjson" }, [202]);
	totals.movements += p.movements.length;
}

// ---------------------------------------------------------------- command line

function adminKey(given: string | undefined): string {
	if (given) return given.trim();
	const file = process.env.ADMIN_API_KEY_FILE ?? path.resolve(__dirname, "..", ".data", "secrets", "admin_api_key");
	if (!existsSync(file)) throw new Error(`no API key: pass --key, or set ADMIN_API_KEY / ADMIN_API_KEY_FILE (${file} does not exist)`);
	return readFileSync(file, "utf8").trim();
}

const duration = (s: number) => (s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m` : s >= 60 ? `${Math.floor(s / 60)}m${String(Math.floor(s % 60)).padStart(2, "0")}s` : `${Math.round(s)}s`);

export async function main(argv: string[]): Promise<number> {
	const flags = parseFlags(argv, {
		persons: { type: "number", integer: true, default: 100, min: 1, max: 10_000_000 },
		seed: { type: "number", integer: true, default: 1, min: 0, max: 2 ** 31 - 1 },
		concurrency: { type: "number", integer: true, default: 8, min: 1, max: 256 },
		url: { type: "string", default: "http://127.0.0.1:3000" },
		key: { type: "string" },
		printCpfs: { type: "boolean" }
	});
	const { persons, seed, concurrency } = flags;
	if (flags.printCpfs) {
		for (let i = 0; i < persons; i++) process.stdout.write(`${generatePerson(seed, i).cpf}\n`);
		return 0;
	}
	const url = new URL(flags.url);
	if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error(`--url must be http(s) (got '${url.href}')`);
	const client: Client = { url: url.origin, key: adminKey(flags.key ?? process.env.ADMIN_API_KEY) };
	const today = todayIso();
	const totals: Totals = { ok: 0, existing: 0, failed: 0, debts: 0, profiles: 0, movements: 0, errors: [] };

	let stopping = false;
	const onSigint = () => {
		if (stopping) process.exit(130); // a second Ctrl-C does not wait
		stopping = true;
		process.stderr.write("\nseed: interrupted, finishing the persons in flight (Ctrl-C again to quit now)\n");
	};
	process.on("SIGINT", onSigint);

	const started = Date.now();
	const tty = process.stderr.isTTY;
	let lastDraw = 0;
	const draw = (force = false) => {
		const now = Date.now();
		if (!force && now - lastDraw < (tty ? 100 : 1000)) return;
		lastDraw = now;
		const done = totals.ok + totals.failed;
		const seconds = (now - started) / 1000;
		const rate = seconds > 0 ? done / seconds : 0;
		const eta = rate > 0 ? duration((persons - done) / rate) : "?";
		const pct = ((done / persons) * 100).toFixed(1);
		const width = 24;
		const filled = Math.round((done / persons) * width);
		const line = `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${done}/${persons} ${pct}% ${rate.toFixed(1)}/s ETA ${eta}${totals.failed ? ` failed ${totals.failed}` : ""}`;
		process.stderr.write(tty ? `\r${line}\x1b[K` : `${line}\n`);
	};
	draw(true);

	let next = 0;
	await Promise.all(Array.from({ length: Math.min(concurrency, persons) }, async () => {
		while (!stopping && next < persons) {
			const i = next++;
			const p = generatePerson(seed, i, today);
			try {
				await seedOne(client, seed, p, totals);
				totals.ok++;
			} catch (err) {
				totals.failed++;
				if (totals.errors.length < 5) totals.errors.push(`person ${i} (${p.cpf}): ${(err as Error).message}`);
			}
			draw();
		}
	}));
	draw(true);
	if (tty) process.stderr.write("\n");
	process.off("SIGINT", onSigint);

	const seconds = (Date.now() - started) / 1000;
	const done = totals.ok + totals.failed;
	console.log(`seed summary: ${totals.ok}/${persons} persons done (${totals.existing} already there), ${totals.failed} failed, ` +
		`${totals.debts} debts, ${totals.profiles} profiles, ${totals.movements} movements in ${seconds.toFixed(1)} s` +
		`${stopping ? ` — interrupted after ${done} persons` : ""} (seed ${seed}, ${client.url})`);
	for (const e of totals.errors) console.log(`  error: ${e}`);
	if (totals.failed > totals.errors.length) console.log(`  … and ${totals.failed - totals.errors.length} more`);
	if (stopping) return 130;
	return totals.failed > 0 ? 1 : 0;
}

if (require.main === module) {
	main(process.argv.slice(2)).then(code => process.exit(code), err => {
		console.error(`seed: ${(err as Error).message}`);
		process.exit(2);
	});
}
