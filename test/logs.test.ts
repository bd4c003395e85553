import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { formatCpf, randomCpf } from "../lib/cpf";
import { api, startMesh, type Mesh } from "./support/mesh";

const lines: string[] = [];
let mesh: Mesh;
beforeAll(async () => {
	for (const method of ["log", "info", "warn", "error", "debug"] as const) {
		vi.spyOn(console, method).mockImplementation((...args: unknown[]) => {
			lines.push(args.map(String).join(" "));
		});
	}
	// Debug level: the most the services ever say.
	mesh = await startMesh(undefined, { logLevel: "debug" });
});
afterAll(async () => {
	await mesh?.stop();
	vi.restoreAllMocks();
});

describe("logs", () => {
	it("never carry a CPF, a name or an address, whatever happens", async () => {
		const cpf = randomCpf();
		const nome = "Zuleika Bragancaverde";
		const endereco = "Rua Inesquecivel Xyz, 4321";
		await api(mesh, "POST", "/api/v1/persons", { body: { cpf: formatCpf(cpf), nome, endereco } });
		await api(mesh, "POST", "/api/v1/persons", { body: { cpf, nome, endereco } });
		await api(mesh, "GET", `/api/v1/persons/${cpf}`);
		await api(mesh, "GET", `/api/v1/persons/${formatCpf(cpf)}`);
		await api(mesh, "PUT", `/api/v1/persons/${cpf}`, { body: { nome: `${nome} Filho`, endereco } });
		await api(mesh, "POST", `/api/v1/persons/${cpf}/dividas`, { body: { valor: -1, empresa: nome, dataVencimento: "31/02/2024" } });
		await api(mesh, "POST", "/api/v1/persons", { body: { cpf: "52998224726", nome, endereco } });
		await api(mesh, "GET", `/api/v1/persons/${cpf}`, { key: "cm_not-a-real-key-at-all-000000" });

		expect(lines.length).toBeGreaterThan(20); // the services did log, at debug level
		const all = lines.join("\n");
		expect(all).toContain("persons"); // sanity: request lines are there
		for (const secret of [cpf, formatCpf(cpf), "52998224726", nome, "Bragancaverde", endereco, "Inesquecivel", mesh.adminKey]) {
			expect(all).not.toContain(secret);
		}
	});
});
