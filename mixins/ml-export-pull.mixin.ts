import { Readable } from "node:stream";
import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import type { MeshLocals, MeshMeta } from "../middlewares/zero-trust.middleware";
import type { ExportPage } from "../lib/base-b/features";
import { config } from "../config";

/**
 * The ML export as the gateway serves it: pulls Base B's `ml-export` a page at a time, and asks for the
 * next page only when the client has taken the one before (one page fetched ahead). A stream pushed over
 * NATS has no back-pressure between nodes (Moleculer publishes each chunk as fast as it is read): a slow
 * client made the gateway hold the whole export (docs/ml-export.md). A mixin of the gateway's own service,
 * not a service of its group: the stream must be written in the process that holds the HTTP response.
 */
export const MlExportPullMixin: Partial<ServiceSchema<ServiceSettingSchema>> = {
	actions: {
		/** GET /ml/features: NDJSON, one row per profile. */
		mlFeatures: {
			callers: ["api"], scopes: ["ml:export"],
			params: { $$strict: true },
			async handler(ctx: Context<Record<string, never>, MeshMeta, MeshLocals>) {
				// The first page before the answer starts: a base down is still a 503, not a cut stream.
				const first = await ctx.call<ExportPage, object>("ml-export.features", {});
				// Every page from the node that holds the cursor, never retried (a retry would skip a page), and
				// outside the request's deadline: the export lasts as long as the client reads.
				const call = (action: "ml-export.page" | "ml-export.close", ref: { export: string }) =>
					ctx.broker.call<ExportPage, object>(action, ref, { nodeID: first.node, retries: 0, timeout: config.requestTimeoutMs, requestID: ctx.requestID ?? undefined, caller: ctx.service?.fullName });
				const pages = async function* () {
					let page = first;
					try {
						for (;;) {
							const next = page.done ? null : call("ml-export.page", { export: page.export });
							// Awaited after the yield; a client gone meanwhile leaves it to the finally.
							next?.catch(() => undefined);
							if (page.lines) yield page.lines;
							if (!next) return;
							page = await next;
						}
					} finally {
						if (!page.done) void call("ml-export.close", { export: page.export }).catch(() => undefined);
					}
				};
				ctx.meta.$responseType = "application/x-ndjson";
				return Readable.from(pages(), { objectMode: false, highWaterMark: 64 * 1024 });
			}
		}
	}
};
