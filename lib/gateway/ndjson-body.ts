import { StringDecoder } from "node:string_decoder";
import { type ItemLimit, tooManyItems } from "../errors";

/** As body-parser reports a body past its limit, so the gateway answers it the same way (413). */
function tooLarge(): Error {
	return Object.assign(new Error("request entity too large"), { type: "entity.too.large", status: 413, statusCode: 413, expose: true });
}

const NOT_BLANK = /\S/;

/**
 * Reads an NDJSON body as it arrives, counting its non-blank lines, and gives up as soon as it holds
 * more than `limit.max` of them (when the route has a limit) or more than `maxBytes`: the rest is never read, so a body of millions
 * of junk lines costs the gateway a few kilobytes, not the whole upload and its copies. The text is
 * passed on whole; the action checks each line itself.
 */
export async function readNdjson(body: AsyncIterable<Buffer | string>, maxBytes: number, limit?: ItemLimit): Promise<string> {
	const decoder = new StringDecoder("utf8");
	const parts: string[] = [];
	let bytes = 0;
	let lines = 0;
	// Whether the line being read (not yet ended by \n) has anything but whitespace.
	let open = false;
	const count = (text: string) => {
		for (let start = 0; start < text.length;) {
			let end = text.indexOf("\n", start);
			const ended = end >= 0;
			if (!ended) end = text.length;
			if (!open && NOT_BLANK.test(text.slice(start, end))) open = true;
			if (ended) {
				if (open) lines++;
				open = false;
			}
			start = end + 1;
		}
	};
	for await (const chunk of body) {
		bytes += typeof chunk === "string" ? Buffer.byteLength(chunk) : chunk.length;
		if (bytes > maxBytes) throw tooLarge();
		const text = typeof chunk === "string" ? chunk : decoder.write(chunk);
		count(text);
		if (limit && lines + (open ? 1 : 0) > limit.max) throw tooManyItems(limit);
		parts.push(text);
	}
	const rest = decoder.end();
	count(rest);
	parts.push(rest);
	return parts.join("");
}
