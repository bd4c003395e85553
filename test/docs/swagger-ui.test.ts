import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chromium, type Browser } from "playwright-core";
import { randomCpf } from "../../lib/cpf";
import { API_PREFIX, ROUTES } from "../../lib/gateway/routes";
import { api, startMesh, type Mesh } from "../support/mesh";

// Debian's chromium, installed by .ci/run; no browser is downloaded.
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

let mesh: Mesh;
let browser: Browser;
beforeAll(async () => {
	if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (.ci/run does)`);
	mesh = await startMesh();
	browser = await chromium.launch({
		executablePath: CHROMIUM,
		args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
	});
}, 120_000);
afterAll(async () => {
	await browser?.close();
	await mesh?.stop();
});

describe("Swagger UI in a real browser", () => {
	it("lists every route and runs Try it out with an API key", async () => {
		const cpf = randomCpf();
		await api(mesh, "POST", "/api/v1/persons", { body: { cpf, nome: "Visto No Navegador", endereco: "Rua P, 16" } });

		const page = await browser.newPage();
		await page.goto(`${mesh.url}/docs`);
		await page.waitForSelector(".opblock", { timeout: 30_000 });

		const shown = await page.$$eval(".opblock-summary", blocks =>
			blocks.map(b => `${b.querySelector(".opblock-summary-method")?.textContent?.trim()} ${b.querySelector(".opblock-summary-path")?.getAttribute("data-path")}`));
		for (const r of ROUTES) expect(shown, `${r.method} ${r.path}`).toContain(`${r.method} ${API_PREFIX}${r.path.replace(/:(\w+)/g, "{$1}")}`);

		// Authorize with the bearer key.
		await page.click("button.authorize");
		await page.fill(".auth-container input", mesh.adminKey);
		await page.click(".auth-btn-wrapper button.authorize");
		await page.click(".auth-btn-wrapper button.btn-done");

		// Try it out on GET /api/v1/persons/{cpf}.
		const op = page.locator(".opblock-get", { has: page.locator(`.opblock-summary-path[data-path="${API_PREFIX}/persons/{cpf}"]`) });
		await op.locator(".opblock-summary").click();
		await op.locator("button.try-out__btn").click();
		await op.locator('tr[data-param-name="cpf"] input').fill(cpf);
		await op.locator("button.execute").click();
		const status = op.locator(".live-responses-table .response .response-col_status").first();
		await status.waitFor({ timeout: 30_000 });
		expect((await status.textContent())?.trim()).toBe("200");
		await expect.poll(() => op.locator(".live-responses-table").textContent(), { timeout: 10_000 }).toContain("Visto No Navegador");
		await page.screenshot({ path: `${process.env.TMPDIR ?? "/tmp"}/credit-mesh-swagger.png` }).catch(() => undefined);
	}, 90_000);
});
