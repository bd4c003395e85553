import { Client } from "@elastic/elasticsearch";
import { config, need } from "../../config";
import { esNodes } from "../../config/elasticsearch";

/** Direct access to Base C: what a raw search of the indices shows. */
export async function withEs<T>(work: (es: Client) => Promise<T>): Promise<T> {
	const es = new Client({ nodes: esNodes(need(config, "elasticsearchUrl")) });
	try {
		return await work(es);
	} finally {
		await es.close();
	}
}

/** Documents of a subject's movements, after a refresh. */
export async function countMovements(filter: object = { match_all: {} }): Promise<number> {
	return withEs(async es => {
		await es.indices.refresh({ index: `${config.esIndexPrefix}-movements` });
		return (await es.count({ index: `${config.esIndexPrefix}-movements`, query: filter })).count;
	});
}
