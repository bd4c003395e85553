import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { readNdjson } from "../../../lib/gateway/ndjson-body";

const LIMIT = { max: 3, type: "TOO_MANY_THINGS", what: "things per request" };

/** A body arriving in the given chunks, counting how many were read. */
function body(chunks: (string | Buffer)[]) {
	let read = 0;
	const stream = Readable.from((function* () {
		for (const c of chunks) {
			read++;
			yield typeof c === "string" ? Buffer.from(c) : c;
		}
	})());
	return { stream, read: () => read };
}

describe("readNdjson", () => {
	it("passes the text on whole, lines split anywhere across chunks, blank lines not counted", async () => {
		const text = '{"a":1}\n\n  \n{"b":2}\r\n{"c":"é"}';
		const bytes = Buffer.from(text);
		// Split inside a line and inside the two bytes of é.
		const at = bytes.indexOf(0xa9);
		const { stream } = body([bytes.subarray(0, 3), bytes.subarray(3, at), bytes.subarray(at)]);
		expect(await readNdjson(stream, 1024, LIMIT)).toBe(text);
	});

	it("gives up at the first chunk past the line count, reading no further", async () => {
		const { stream, read } = body(["1\n2\n", "3\n4\n", "5\n".repeat(1000), "6\n".repeat(1000)]);
		await expect(readNdjson(stream, 1 << 20, LIMIT)).rejects.toMatchObject({ code: 413, type: "TOO_MANY_THINGS", data: { max: 3 }, message: "At most 3 things per request" });
		expect(read()).toBe(2);
	});

	it("counts an unfinished last line", async () => {
		await expect(readNdjson(body(["1\n2\n3\n4"]).stream, 1024, LIMIT)).rejects.toMatchObject({ code: 413 });
		expect(await readNdjson(body(["1\n2\n3\n \n"]).stream, 1024, LIMIT)).toBe("1\n2\n3\n \n");
	});

	it("gives up past the byte limit as body-parser does (entity.too.large)", async () => {
		const { stream, read } = body(["1\n", " ".repeat(600), " ".repeat(600), "x"]);
		await expect(readNdjson(stream, 1000, LIMIT)).rejects.toMatchObject({ type: "entity.too.large", status: 413 });
		expect(read()).toBe(3);
	});
});
