import { expect } from "vitest";
import { api, type Mesh } from "./mesh";
import { snapshot } from "./db";

/** What a bad request sends besides its method and path. */
export interface BadRequest { body?: unknown; rawBody?: string; headers?: Record<string, string> }

/** A row of a bad-input table: name, method, path (`{cpf}` is replaced), request, the status it must get. */
export type BadInputCase = [string, string, string, BadRequest, number];

/**
 * Sends a request that must be refused: it gets `status` in the error shape, with no stack frame or SQL in
 * it, and Base A's data tables are exactly as they were before.
 */
export async function expectRefusedAndUnchanged(mesh: Mesh, method: string, path: string, request: BadRequest, status: number): Promise<void> {
	const before = await snapshot();
	const res = await api(mesh, method, path, request);
	expect(res.status).toBe(status);
	expect(res.body).toMatchObject({ name: expect.any(String), message: expect.any(String), code: status });
	const text = JSON.stringify(res.body);
	expect(text).not.toMatch(/at \w+ \(|node_modules|SELECT|INSERT|sequelize/i);
	expect(await snapshot()).toBe(before);
}
