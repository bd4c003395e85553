import { ServiceBroker, type ServiceSchema } from "moleculer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createValidator } from "../../lib/validator";
import * as fields from "../../lib/fields";
import { paramsSchema } from "../../lib/openapi";
import { ParamsSchemaMiddleware } from "../../middlewares/params-schema.middleware";

// ParamsSchemaMiddleware on an in-process broker: each action with params carries them as plain JSON
// Schema, made where the action lives, in what the node announces to the others (its INFO packet,
// which moleculer makes with safetyObject: a RegExp arrives as {} and a rule met twice is dropped).
let broker: ServiceBroker;

const Persons: ServiceSchema = {
	name: "persons",
	actions: {
		// fields.nome twice and its RegExp pattern: what safetyObject loses.
		create: { params: { $$strict: true, cpf: fields.cpf, nome: fields.nome, apelido: fields.nome, endereco: fields.endereco }, handler: () => true },
		ping: { handler: () => "pong" },
		shorthand: { params: { id: "uuid" }, handler: () => true }
	}
};

beforeAll(async () => {
	broker = new ServiceBroker({ transporter: null, nodeID: `params-schema-${process.pid}`, logger: false, validator: createValidator() as any, middlewares: [ParamsSchemaMiddleware] });
	broker.createService(Persons);
	await broker.start();
});
afterAll(async () => {
	await broker?.stop();
});

/** An action as the node announces it to the others. */
function announced(action: string): { params?: any; paramsSchema?: any } | undefined {
	const info: any = broker.registry.getLocalNodeInfo(true);
	return info.services.find((s: any) => s.name === "persons")?.actions[action];
}

describe("params schema", () => {
	it("gives an action with params its JSON Schema, the same paramsSchema() makes", () => {
		const create = announced("persons.create")!;
		expect(create.paramsSchema).toEqual(paramsSchema((Persons.actions!.create as { params: Record<string, unknown> }).params));
		expect(create.paramsSchema).toMatchObject({ type: "object", additionalProperties: false, required: expect.arrayContaining(["cpf", "nome", "apelido", "endereco"]) });
		expect(announced("persons.shorthand")!.paramsSchema).toMatchObject({ properties: { id: { type: "string", format: "uuid" } } });
	});

	it("survives the trip to another node where the params themselves do not: patterns as strings, a reused rule kept", () => {
		const create = announced("persons.create")!;
		expect(create.paramsSchema.properties.nome.pattern).toBe(fields.nome.pattern.source);
		expect(create.paramsSchema.properties.apelido.pattern).toBe(fields.nome.pattern.source);
		expect(create.paramsSchema.properties.endereco.pattern).toBe(fields.endereco.pattern.source);
		// What the params look like on the other side: the pattern lost, the second use of the rule gone.
		expect(create.params.nome.pattern).toEqual({});
		expect(create.params).not.toHaveProperty("apelido");
	});

	it("gives an action without params none", () => {
		expect(announced("persons.ping")).toBeDefined();
		expect(announced("persons.ping")).not.toHaveProperty("paramsSchema");
	});
});
