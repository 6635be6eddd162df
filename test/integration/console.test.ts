/**
 * The live console in a real headless browser (Debian's chromium via playwright-core): it shows
 * a region's level falling during a burst, a partition and a heal, and takes the screenshot the
 * README links (`TOKENBANK_SCREENSHOT=docs/console.png npm test -- console` rewrites it).
 */
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type LocalSystem, startLocalSystem } from "../../local/system.js";

const CHROMIUM = "/usr/bin/chromium";
let system: LocalSystem;
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)`);
  system = await startLocalSystem({
    regions: ["us-east-1", "eu-central-1"],
    rules: [],
    basePort: 0,
    controlPort: 0,
    lagMs: 500,
    dynamoEndpoint: inject("dynamoEndpoint"),
    tableName: `console-${randomUUID().slice(0, 8)}`,
    reconcileEveryMs: 0,
  });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu"] });
});
afterAll(async () => {
  await browser?.close();
  await system?.stop();
});

const rate = (url: string) =>
  fetch(`${url}/rate`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"key":"burst"}' }).then((r) => r.status);
const tokensShown = (page: Page, region: string) =>
  page
    .locator(`#now tr[data-region="${region}"] td.tokens`)
    .textContent({ timeout: 10_000 })
    .then((t) => Number(t));

describe("the live console", () => {
  it("shows a burst draining a region, a partition and a heal", async () => {
    const [us, eu] = system.regions as [(typeof system.regions)[number], (typeof system.regions)[number]];
    const put = await fetch(`${us.url}/buckets/burst`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ capacity: 40, refillRate: 1 }),
    });
    expect(put.status).toBe(201);
    // Both regions serve once (their rows exist; eu-central-1 once the config has replicated), then the page watches the bucket.
    expect(await rate(us.url)).toBe(200);
    await expect.poll(() => rate(eu.url), { timeout: 10_000, interval: 200 }).toBe(200);
    const page = await browser.newPage({ viewport: { width: 1400, height: 860 } });
    await page.goto(`${system.controlUrl}/?key=burst`);
    await expect.poll(() => tokensShown(page, "us-east-1"), { timeout: 10_000 }).toBeGreaterThan(10);
    const before = await tokensShown(page, "us-east-1");

    // A burst into us-east-1: the page must show its level falling.
    const codes = await Promise.all(Array.from({ length: 30 }, () => rate(us.url)));
    expect(codes.filter((c) => c === 200).length).toBeGreaterThan(10);
    await expect.poll(() => tokensShown(page, "us-east-1"), { timeout: 5000 }).toBeLessThan(before);

    // Partition eu-central-1 with the page's own button; it keeps serving from its slice; heal.
    await page.selectOption("#region", "eu-central-1");
    await page.click("#partition");
    await expect.poll(() => page.locator("#now").textContent(), { timeout: 5000 }).toContain("(cut off)");
    for (let i = 0; i < 8; i++) await rate(eu.url);
    await new Promise((r) => setTimeout(r, 1500));
    await page.click("#heal");
    await expect.poll(() => page.locator("#now").textContent(), { timeout: 5000 }).not.toContain("(cut off)");
    await new Promise((r) => setTimeout(r, 1500));
    const log = await page.locator("#log").textContent();
    expect(log).toContain("partitioned eu-central-1");
    expect(log).toContain("healed");
    const samples = await page.evaluate(() => (globalThis as unknown as { __console: { samples: unknown[] } }).__console.samples.length);
    expect(samples).toBeGreaterThan(10);
    const path = process.env.TOKENBANK_SCREENSHOT ?? join(tmpdir(), `tokenbank-console-${process.pid}.png`);
    await page.screenshot({ path, fullPage: true });
    expect(existsSync(path)).toBe(true);
    await page.close();
  }, 90_000);
});
