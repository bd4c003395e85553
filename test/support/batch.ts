import { randomCpf } from "../../lib/cpf";
import { PROFILES } from "../../mixins/base-b.mixin";
import { piiCipher } from "./keys";
import type { Mesh } from "./mesh";
import { TEST_PURPOSE } from "./mesh";
import { withMongo } from "./mongo";

/** A profile sealed as the profiles service seals it, for inserting with the raw driver (speed). */
function profileDoc(cpf: string, i: number) {
	const pii = piiCipher();
	const _id = pii.blindIndex(cpf);
	const seal = (field: string, value: string) => pii.encrypt(value, `profiles.${field}:${_id}`);
	return {
		_id, cpf_enc: seal("cpf", cpf), endereco_enc: seal("endereco", `Rua ${i}`), dataNascimento_enc: seal("dataNascimento", `19${50 + (i % 50)}-0${1 + (i % 9)}-1${i % 10}`),
		fonteDeRenda: "Assalariado", bens: [{ tipo: "Casa", inicioPosse: "2015-06-01", quitado: i % 2 === 0 }], createdAt: new Date(), updatedAt: new Date()
	};
}

/** `count` distinct random CPFs, each given a profile in Base B (and nothing else): a batch's bulk. */
export async function seedProfiles(count: number): Promise<string[]> {
	const unique = new Set<string>();
	while (unique.size < count) unique.add(randomCpf());
	const cpfs = [...unique];
	await withMongo(async db => {
		for (let start = 0; start < count; start += 2000) await db.collection(PROFILES).insertMany(cpfs.slice(start, start + 2000).map((cpf, k) => profileDoc(cpf, start + k)) as any[], { ordered: false });
	});
	return cpfs;
}

/** Removes the profiles seedProfiles put in. */
export async function removeProfiles(cpfs: string[]): Promise<void> {
	await withMongo(async db => {
		const ids = cpfs.map(cpf => piiCipher().blindIndex(cpf));
		for (let start = 0; start < ids.length; start += 1000) await db.collection(PROFILES).deleteMany({ _id: { $in: ids.slice(start, start + 1000) } as any });
	});
}

/** A POST to a batch route (`/scores/batch`, `/reports/batch`), its NDJSON lines parsed. */
export async function postBatch(mesh: Mesh, path: string, body: string, { contentType = "application/json", headers = { finalidade: TEST_PURPOSE } as Record<string, string>, key = mesh.adminKey } = {}) {
	const res = await fetch(`${mesh.url}/api/v1${path}`, { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": contentType, ...headers }, body });
	const text = await res.text();
	return { status: res.status, type: res.headers.get("content-type") ?? "", text, lines: res.status === 200 ? text.trim().split("\n").map(l => JSON.parse(l)) : [], body: res.status === 200 ? null : JSON.parse(text) };
}
