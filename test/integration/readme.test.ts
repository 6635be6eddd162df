/**
 * The commands of the README and of the docs pages work as printed: each `curl` line runs (as a
 * fetch) against the local system on the documented ports, in order, and a status its comment
 * promises is the status it gets. Nothing answers 5xx. The forecast example, which computes its
 * times in the shell, runs in bash with curl. (The CLI's commands are tested in cli.test.ts, the
 * simulator's in the simulator tests; `cdk deploy` only synthesizes here.)
 */

import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { loadRulesFile } from "../../lambda/adapters/rules-file.js";
import { type LocalSystem, startLocalSystem } from "../../local/system.js";
import { blockAfter, curlCalls } from "../helpers/curl.js";

let system: LocalSystem;
beforeAll(async () => {
  system = await startLocalSystem({
    regions: ["us-east-1", "eu-central-1"],
    rules: loadRulesFile("buckets.yaml"),
    basePort: 8787,
    controlPort: 8780,
    dynamoEndpoint: inject("dynamoEndpoint"),
    tableName: `readme-${randomUUID().slice(0, 8)}`,
    reconcileEveryMs: 0,
  });
});
afterAll(async () => system?.stop());

async function run(block: string) {
  const calls = curlCalls(block);
  expect(calls.length).toBeGreaterThan(0);
  for (const call of calls) {
    if (call.sleepMs !== undefined) {
      await new Promise((r) => setTimeout(r, call.sleepMs));
      continue;
    }
    const res = await fetch(call.url, { method: call.method, headers: call.headers, body: call.body });
    const text = await res.text();
    expect(res.status, `${call.line}\n→ ${res.status} ${text}`).toBeLessThan(500);
    if (call.expect !== undefined) expect(res.status, `${call.line}\n→ ${text}`).toBe(call.expect);
  }
  return calls.length;
}

describe("documented commands", () => {
  it("README: the five lines to try", async () => {
    expect(await run(blockAfter(readFileSync("README.md", "utf8"), "## Five lines to try"))).toBe(5);
  });

  it("docs/local.md: the longer session", async () => {
    await run(blockAfter(readFileSync("docs/local.md", "utf8"), "## Try it"));
  });

  it("docs/operations.md: changing limits while traffic flows, and the history", async () => {
    const put = await fetch("http://127.0.0.1:8787/buckets/demo", {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ capacity: 10, refillRate: 1 }),
    });
    expect(put.status).toBeLessThan(300);
    await run(blockAfter(readFileSync("docs/operations.md", "utf8"), "## Change limits while traffic flows"));
    const history = (await (await fetch("http://127.0.0.1:8787/buckets/demo/history")).json()) as { history: unknown[] };
    expect(history.history.length).toBeGreaterThanOrEqual(2);
  });

  it("docs/forecasts.md: the forecast event (bash and curl, as printed)", async () => {
    // Asynchronously: the control API answering curl runs in this very process.
    const { stdout } = await promisify(execFile)("bash", ["-c", blockAfter(readFileSync("docs/forecasts.md", "utf8"), "# Forecasts")], {
      encoding: "utf8",
      timeout: 20_000,
    });
    expect(JSON.parse(stdout)).toHaveProperty("accepted");
  });
});
