/**
 * The Swagger UI page. The gateway serves the `swagger-ui-dist` folder
 * (`require("swagger-ui-dist").getAbsoluteFSPath()`) at `assetsPath`.
 */

const escapeHtml = (s: string) =>
	s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] as string);

// A JS string literal that cannot close the <script> element nor break on U+2028/9.
const jsString = (s: string) =>
	JSON.stringify(s).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);

export function swaggerUiHtml(opts: { specUrl: string; assetsPath: string; title: string }): string {
	const assets = escapeHtml(opts.assetsPath.replace(/\/+$/, ""));
	return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(opts.title)}</title>
<link rel="stylesheet" href="${assets}/swagger-ui.css">
<style>body { margin: 0; }</style>
</head>
<body>
<div id="swagger-ui"></div>
<script src="${assets}/swagger-ui-bundle.js"></script>
<script src="${assets}/swagger-ui-standalone-preset.js"></script>
<script>
window.ui = SwaggerUIBundle({
	url: ${jsString(opts.specUrl)},
	dom_id: "#swagger-ui",
	deepLinking: true,
	// An API key typed here stays in this page's memory only, never in localStorage.
	persistAuthorization: false,
	presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
	plugins: [SwaggerUIBundle.plugins.DownloadUrl],
	layout: "StandaloneLayout"
});
</script>
</body>
</html>
`;
}
