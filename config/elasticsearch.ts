/**
 * The Elasticsearch nodes of ELASTICSEARCH_URL: one URL, or every node of a cluster comma-separated
 * (`http://user:pass@es-1:9200,http://user:pass@es-2:9200,…`). The client spreads requests over them and
 * retries a request on another node when one does not answer (docs/deploy.md, "Failure budgets").
 */
export function esNodes(url: string): string[] {
	return url.split(",").map(u => u.trim()).filter(u => u !== "");
}
