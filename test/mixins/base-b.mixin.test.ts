import { randomBytes } from "node:crypto";
import { ServiceBroker, type ServiceSchema } from "moleculer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BaseBMixin, PROFILES } from "../../mixins/base-b.mixin";
import { withMongo } from "../support/mongo";

// BaseBMixin on an in-process broker against the real Base B (FerretDB): one service of the mixin's
// own, its adapter on the profiles collection.
let broker: ServiceBroker;
const Reader: ServiceSchema = {
	name: "base-b-reader",
	mixins: [BaseBMixin()],
	actions: {
		insertRaw: { params: { _id: "string" }, handler(this: any, ctx: any) { return this.adapter.collection.insertOne({ _id: ctx.params._id, fonteDeRenda: "Outro", bens: [] }).then(() => true); } }
	}
};

beforeAll(async () => {
	broker = new ServiceBroker({ transporter: null, nodeID: `base-b-mixin-${process.pid}`, logger: false });
	broker.createService(Reader);
	await broker.start();
});
afterAll(async () => {
	await broker?.stop();
});

describe("BaseBMixin", () => {
	it("answers health when Base B answers its ping", async () => {
		expect(await broker.call("base-b-reader.health")).toEqual({ base: "B", status: "up" });
	});

	it("works on the profiles collection, and answers a second document with the same _id with 409", async () => {
		const id = randomBytes(32).toString("hex");
		expect(await broker.call("base-b-reader.insertRaw", { _id: id })).toBe(true);
		expect(await withMongo(db => db.collection(PROFILES).countDocuments({ _id: id } as any, {}))).toBe(1);
		await expect(broker.call("base-b-reader.insertRaw", { _id: id })).rejects.toMatchObject({ code: 409, type: "CONFLICT" });
		await withMongo(async db => void (await db.collection(PROFILES).deleteMany({ _id: id } as any, {})));
	});
});
