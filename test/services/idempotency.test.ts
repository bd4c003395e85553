import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomCpf } from "../../lib/cpf";
import { CLAIM_LEASE_SECONDS } from "../../services/idempotency.service";
import { ServiceBroker } from "moleculer";
import brokerConfig from "../../moleculer.config";
import { BASE_A_MESH, api, eventually, startMesh, type Mesh } from "../support/mesh";
import { ownerQuery } from "../support/db";

// Found by test/faults.test.ts: a claim whose answer was never stored (its node was killed, or Base A
// or NATS went away between the write and storing its answer) answered "in progress" for 24 hours.
// A Base A write now stores its answer in its own transaction (mixins/base-a.mixin.ts), so a claim
// without an answer means the write did not commit, and taking it over writes once.
let mesh: Mesh;
beforeAll(async () => {
	mesh = await startMesh(BASE_A_MESH);
});
afterAll(async () => {
	await mesh?.stop();
});

/** Makes the stored answer of a key look like a claim still in progress, held by `node`, made `ageSeconds` ago. */
async function abandon(key: string, node: string, ageSeconds = 0): Promise<void> {
	await ownerQuery(
		"UPDATE idempotency_keys SET status = NULL, response_enc = NULL, node_id = $2, created_at = now() - make_interval(secs => $3) WHERE key = $1",
		[key, node, ageSeconds]);
}

describe("Idempotency-Key claims left behind", () => {
	it("are taken over at once when the claiming node left the mesh, else once their lease ran out", async () => {
		const cpf = randomCpf();
		expect((await api(mesh, "POST", "/api/v1/persons", { body: { cpf, nome: "Chave Perdida", endereco: "Rua K, 1" } })).status).toBe(201);
		const key = `claim-${cpf}`;
		const put = () => api(mesh, "PUT", `/api/v1/persons/${cpf}`, { body: { endereco: "Rua K, 2" }, headers: { "idempotency-key": key } });
		expect((await put()).status).toBe(200);

		// Held by a live node that just claimed it: still running, so a retry must wait.
		const live = mesh.broker("persons").nodeID;
		await abandon(key, live);
		const busy = await put();
		expect(busy.status).toBe(409);
		expect(busy.body.type).toBe("IDEMPOTENCY_IN_PROGRESS");

		// Held by a live node for longer than the lease: abandoned.
		await abandon(key, live, CLAIM_LEASE_SECONDS + 1);
		const leased = await put();
		expect(leased.status).toBe(200);
		expect(leased.body.endereco).toBe("Rua K, 2");
		const [row] = await ownerQuery("SELECT status, node_id FROM idempotency_keys WHERE key = $1", [key]);
		expect(row).toEqual({ status: 200, node_id: live });

		// Held by a node this replica has never met (it may be starting): its lease applies.
		await abandon(key, "base-a-unknown-node");
		expect((await put()).body.type).toBe("IDEMPOTENCY_IN_PROGRESS");

		// Held by a node that was in the mesh and left it (killed, or stopped): taken over at once, and answered.
		const gone = new ServiceBroker({ ...brokerConfig, namespace: mesh.namespace, nodeID: `base-a-gone-${cpf}`, logger: false });
		await gone.start();
		const seen = () => mesh.broker("persons").registry.nodes.get(gone.nodeID);
		await eventually(async () => seen()?.available, up => up === true, 10_000, 100);
		await gone.stop();
		await eventually(async () => seen()?.available, up => up === false, 10_000, 100);
		await abandon(key, gone.nodeID);
		const taken = await put();
		expect(taken.status).toBe(200);
		expect((await put()).status).toBe(200);
		const [after] = await ownerQuery("SELECT status FROM idempotency_keys WHERE key = $1", [key]);
		expect(after.status).toBe(200);
	});
});
