import { StringDecoder } from "node:string_decoder";
import { Errors } from "moleculer";

/** How many lines a route's NDJSON body may hold, and how it says so past that (as its action would). */
export interface ItemLimit {
	max: number;
	/** The error's type, e.g. TOO_MANY_MOVEMENTS. */
	type: string;
	/** What is counted, for the message: `At most 10000 movements per request`. */
	what: string;
}

export function tooManyItems(limit: ItemLimit): Errors.MoleculerClientError {
	return new Errors.MoleculerClientError(`At most ${limit.max} ${limit.what}`, 413, limit.type, { max: limit.max });
}

/** As body-parser reports a body past its limit, so the gateway answers it the same way (413). */
function tooLarge(): Error {
	return Object.assign(new Error("request entity too large"), { type: "entity.too.large", status: 413, statusCode: 413, expose: true });
}

const NOT_BLANK = /\S/;

/**
 * Reads an NDJSON body as it arrives, counting its non-blank lines, and gives up as soon as it holds
 * more than `limit.max` of them or more than `maxBytes`: the rest is never read, so a body of millions
 * of junk lines costs the gateway a few kilobytes, not the whole upload and its copies. The text is
 * passed on whole; the action checks each line itself.
 */
export async function readNdjson(body: AsyncIterable<Buffer | string>, maxBytes: number, limit: ItemLimit): Promise<string> {
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
		if (lines + (open ? 1 : 0) > limit.max) throw tooManyItems(limit);
		parts.push(text);
	}
	const rest = decoder.end();
	count(rest);
	parts.push(rest);
	return parts.join("");
}
