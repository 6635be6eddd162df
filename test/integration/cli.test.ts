/** The tokenbank CLI as a user runs it, against a local region (real handlers, DynamoDB Local). */
import { execFile } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRegion } from "../helpers/server.js";

let region: Awaited<ReturnType<typeof startRegion>>;
beforeAll(async () => {
  region = await startRegion();
  await region.call("PUT", "/buckets/cli", { capacity: 2, refillRate: 0 });
});
afterAll(async () => region?.close());

/** Runs the CLI without blocking this process (the server under test lives in it). */
function cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      "node",
      ["bin/tokenbank.mjs", ...args, "--endpoint", region.server.url],
      { encoding: "utf8", timeout: 60_000 },
      (error, stdout, stderr) => {
        resolve({ code: error ? ((error as { code?: number }).code ?? 2) : 0, stdout, stderr });
      },
    );
  });
}

describe("tokenbank CLI", () => {
  it("rate: exit 0 when allowed, 1 when denied, 2 on errors", async () => {
    expect(await cli("rate", "cli", "--tokens", "2")).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(/^allowed: cli −2, 0 of 2 left/),
    });
    expect(await cli("rate", "cli")).toMatchObject({ code: 1, stdout: expect.stringMatching(/^denied: cli \(insufficient\)/) });
    expect(await cli("rate", "nope")).toMatchObject({ code: 2, stderr: expect.stringMatching(/bucket.not_found/) });
  }, 120_000);

  it("status prints a per-region table, and --json is valid JSON", async () => {
    const table = await cli("status", "cli");
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^cli: 0 of 2 tokens world-wide/);
    expect(table.stdout).toMatch(/\nregion\s+tokens\s+capacity\s+share\s+rate\s+age ms\nus-east-1\s+0\s+2\s+100.0%/);
    const json = await cli("status", "cli", "--json");
    expect(JSON.parse(json.stdout)).toMatchObject({ key: "cli", tokens: 0, regions: [{ region: "us-east-1" }] });
  }, 120_000);
});
