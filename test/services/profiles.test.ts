import { piiCipher } from "../support/keys";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatCpf, randomCpf } from "../../lib/cpf";
import { todayIso, yearsBetween } from "../../lib/dates";
import { api, engines, eventually, startMesh, type Mesh } from "../support/mesh";
import { profilesDigest, withMongo } from "../support/mongo";
import { seedPayloadB } from "../support/profiles";

let mesh: Mesh;
beforeAll(async () => {
	mesh = await startMesh();
});
afterAll(async () => {
	await engines("up", "mongo");
	await mesh?.stop();
});

describe("payload B", () => {
	it("round-trips the seed payload, with idade derived from dataNascimento", async () => {
		const cpf = randomCpf();
		const created = await api(mesh, "PUT", `/api/v1/profiles/${formatCpf(cpf)}`, { body: seedPayloadB });
		expect(created.status).toBe(201);
		const expected = {
			cpf, dataNascimento: "10/05/1986", idade: yearsBetween("1986-05-10", todayIso()), endereco: seedPayloadB.endereco, fonteDeRenda: "Assalariado",
			bens: [{ tipo: "Casa", inicioPosse: "01/02/2015", quitado: true }, { tipo: "Carro", inicioPosse: "15/07/2022", quitado: false }]
		};
		expect(created.body).toEqual(expected);
		const read = await api(mesh, "GET", `/api/v1/profiles/${cpf}`);
		expect(read.status).toBe(200);
		expect(Object.keys(read.body)).toEqual(["cpf", "dataNascimento", "idade", "endereco", "fonteDeRenda", "bens"]);
		expect(read.body).toEqual(expected);

		// A second PUT replaces the profile (200) and keeps it unique per CPF.
		const replaced = await api(mesh, "PUT", `/api/v1/profiles/${cpf}`, { body: { ...seedPayloadB, bens: [], idade: expected.idade } });
		expect(replaced.status).toBe(200);
		expect((await api(mesh, "GET", `/api/v1/profiles/${cpf}`)).body.bens).toEqual([]);
		const count = await withMongo(db => db.collection("profiles").countDocuments({}));
		const again = await api(mesh, "PUT", `/api/v1/profiles/${cpf}`, { body: seedPayloadB });
		expect(again.status).toBe(200);
		expect(await withMongo(db => db.collection("profiles").countDocuments({}))).toBe(count);
	});

	it("creates a profile once when several PUTs of a new CPF race, the others replacing it (no 409)", async () => {
		// Found by test/faults.test.ts: two PUTs of a new profile upserted at once and the loser got a 409.
		for (let round = 0; round < 5; round++) {
			const cpf = randomCpf();
			const answers = await Promise.all(Array.from({ length: 6 }, (_, i) =>
				api(mesh, "PUT", `/api/v1/profiles/${cpf}`, { body: { ...seedPayloadB, fonteDeRenda: i % 2 ? "Autônomo" : "Assalariado" } })));
			const statuses = answers.map(a => a.status).sort();
			expect(statuses.every(s => s === 200 || s === 201), JSON.stringify(answers.map(a => a.body))).toBe(true);
			expect(statuses.filter(s => s === 201).length).toBeGreaterThanOrEqual(1);
			expect((await api(mesh, "GET", `/api/v1/profiles/${cpf}`)).status).toBe(200);
		}
	});

	it("answers 404 for an unknown CPF", async () => {
		expect((await api(mesh, "GET", `/api/v1/profiles/${randomCpf()}`)).status).toBe(404);
	});

	it("audits reads and writes of Base B", async () => {
		const cpf = randomCpf();
		await api(mesh, "PUT", `/api/v1/profiles/${cpf}`, { body: seedPayloadB });
		await api(mesh, "GET", `/api/v1/profiles/${cpf}`);
		await api(mesh, "GET", `/api/v1/profiles/${cpf}/score`);
		const trail = await api(mesh, "GET", `/api/v1/audit?cpf=${cpf}`);
		expect(trail.body.entries.map((e: any) => `${e.action}:${e.outcome}`)).toEqual([
			"profiles.put:started", "profiles.put:ok", "profiles.get:ok", "asset-score.get:ok"
		]);
	});

	it("stores no plaintext CPF, address or birth date", async () => {
		const cpf = randomCpf();
		await api(mesh, "PUT", `/api/v1/profiles/${cpf}`, { body: { ...seedPayloadB, endereco: "Alameda Improvavel, 999", dataNascimento: "13/07/1977" } });
		const dump = await withMongo(async db => JSON.stringify(await db.collection("profiles").find({}).toArray()));
		for (const secret of [cpf, formatCpf(cpf), "Improvavel"]) expect(dump).not.toContain(secret);
		// The birth date is looked for in this profile's own document: other tests' profiles hold assets whose
		// (not personal) acquisition dates are plain and may fall on the same day.
		const own = await withMongo(async db => JSON.stringify(await db.collection("profiles").findOne({ _id: piiCipher().blindIndex(cpf) as never })));
		expect(own).not.toBe("null");
		for (const secret of ["1977-07-13", "13/07/1977", "Improvavel", cpf]) expect(own).not.toContain(secret);
		const doc = await withMongo(db => db.collection("profiles").findOne({}));
		expect(doc!._id).toMatch(/^[0-9a-f]{64}$/);
		expect(doc!.cpf_enc).toMatch(/^v1\./);
	});
});

describe("bad input gets a 4xx and writes nothing", () => {
	const gt = { $gt: "" };
	const cases: [string, unknown, number][] = [
		["operator in dataNascimento", { ...seedPayloadB, dataNascimento: gt }, 422],
		["operator in endereco", { ...seedPayloadB, endereco: gt }, 422],
		["operator in fonteDeRenda", { ...seedPayloadB, fonteDeRenda: { $ne: null } }, 422],
		["operator in bens", { ...seedPayloadB, bens: gt }, 422],
		["operator in bens[].tipo", { ...seedPayloadB, bens: [{ tipo: { $regex: ".*" }, inicioPosse: "01/01/2020", quitado: true }] }, 422],
		["operator in bens[].quitado", { ...seedPayloadB, bens: [{ tipo: "Casa", inicioPosse: "01/01/2020", quitado: { $exists: true } }] }, 422],
		["$set as a field", { ...seedPayloadB, $set: { fonteDeRenda: "Outro" } }, 422],
		["operator in cpf body field", { ...seedPayloadB, cpf: gt }, 422],
		["unknown tipo", { ...seedPayloadB, bens: [{ tipo: "Castelo", inicioPosse: "01/01/2020", quitado: true }] }, 422],
		["unknown field in an asset", { ...seedPayloadB, bens: [{ tipo: "Casa", inicioPosse: "01/01/2020", quitado: true, valor: 1 }] }, 422],
		["asset without quitado", { ...seedPayloadB, bens: [{ tipo: "Casa", inicioPosse: "01/01/2020" }] }, 422],
		["quitado as a string", { ...seedPayloadB, bens: [{ tipo: "Casa", inicioPosse: "01/01/2020", quitado: "true" }] }, 422],
		["bens not an array", { ...seedPayloadB, bens: "Casa" }, 422],
		["impossible inicioPosse", { ...seedPayloadB, bens: [{ tipo: "Casa", inicioPosse: "30/02/2020", quitado: true }] }, 422],
		["possession in the future", { ...seedPayloadB, bens: [{ tipo: "Casa", inicioPosse: "01/01/2199", quitado: true }] }, 422],
		["possession before birth", { ...seedPayloadB, bens: [{ tipo: "Casa", inicioPosse: "01/01/1980", quitado: true }] }, 422],
		["birth in the future", { ...seedPayloadB, dataNascimento: "01/01/2199", bens: [] }, 422],
		["impossible birth date", { ...seedPayloadB, dataNascimento: "31/04/1990" }, 422],
		["idade that contradicts dataNascimento", { ...seedPayloadB, idade: 3 }, 422],
		["unknown fonteDeRenda", { ...seedPayloadB, fonteDeRenda: "Loteria" }, 422],
		["SQL/NoSQL injection string in endereco", { ...seedPayloadB, endereco: "'; db.profiles.drop(); '" }, 422],
		["missing fields", { dataNascimento: "10/05/1986" }, 422],
		["too many assets", { ...seedPayloadB, bens: Array(101).fill(seedPayloadB.bens[0]) }, 422]
	];

	it.each(cases)("%s → %s", async (_name, body, status) => {
		const cpf = randomCpf();
		const before = await profilesDigest();
		const res = await api(mesh, "PUT", `/api/v1/profiles/${cpf}`, { body });
		expect(res.status).toBe(status);
		expect(res.body.code).toBe(status);
		expect(await profilesDigest()).toBe(before);
	});

	it("refuses a CPF that is not one, and non-JSON bodies", async () => {
		expect((await api(mesh, "PUT", "/api/v1/profiles/52998224726", { body: seedPayloadB })).status).toBe(422);
		expect((await api(mesh, "GET", "/api/v1/profiles/%7B%22%24gt%22%3A%22%22%7D")).status).toBe(422);
		expect((await api(mesh, "PUT", `/api/v1/profiles/${randomCpf()}`, { rawBody: "x", headers: { "content-type": "text/plain" } })).status).toBe(415);
		// The body may carry the cpf of payload B, but only the path's.
		const cpf = randomCpf();
		expect((await api(mesh, "PUT", `/api/v1/profiles/${cpf}`, { body: { ...seedPayloadB, cpf: randomCpf() } })).status).toBe(422);
		expect((await api(mesh, "PUT", `/api/v1/profiles/${cpf}`, { body: { ...seedPayloadB, cpf: formatCpf(cpf) } })).status).toBe(201);
	});
});

describe("Base B going down and coming back", () => {
	it("answers 503 with Retry-After while the MongoDB-protocol server is down, then recovers", async () => {
		const cpf = randomCpf();
		await api(mesh, "PUT", `/api/v1/profiles/${cpf}`, { body: seedPayloadB });
		await engines("down", "mongo");
		// FerretDB shuts down gracefully: a connection it already had may finish its last request.
		const read = await eventually(() => api(mesh, "GET", `/api/v1/profiles/${cpf}`), r => r.status === 503, 10_000, 200);
		expect(read.status).toBe(503);
		expect(Number(read.headers.get("retry-after"))).toBeGreaterThan(0);
		expect((await api(mesh, "GET", `/api/v1/profiles/${cpf}/score`)).status).toBe(503);
		expect((await api(mesh, "PUT", `/api/v1/profiles/${randomCpf()}`, { body: seedPayloadB })).status).toBe(503);
		const ready = await api(mesh, "GET", "/health/ready", { key: null });
		expect(ready.status).toBe(503);
		expect(ready.body.bases).toMatchObject({ A: { status: "up" }, B: { status: "down" } });

		await engines("up", "mongo");
		const back = await eventually(() => api(mesh, "GET", `/api/v1/profiles/${cpf}`), r => r.status === 200, 30_000, 500);
		expect(back.status).toBe(200);
		expect((await api(mesh, "GET", "/health/ready", { key: null })).status).toBe(200);
	});
});
