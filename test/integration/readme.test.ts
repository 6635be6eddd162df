/**
 * The commands of the README and of docs/local.md work as printed: each `curl` line runs (as a
 * fetch) against the local system on the documented ports, in order, and a status its comment
 * promises is the status it gets. Nothing answers 5xx.
 */

import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
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
});
