/** The reconciler against the local multi-region system (DynamoDB Local, emulated replication). */
import { randomUUID } from "node:crypto";
import { DeleteItemCommand } from "@aws-sdk/client-dynamodb";
import { afterEach, describe, expect, inject, it } from "vitest";
import { makeDynamoClient } from "../../lambda/adapters/dynamodb/store.js";
import { systemClock } from "../../lambda/adapters/system-clock.js";
import { reconcile } from "../../lambda/app/reconciler.js";
import { type LocalSystem, startLocalSystem } from "../../local/system.js";
import { pacedLoad } from "../helpers/load.js";

const REGIONS = ["us-east-1", "eu-central-1"];
let system: LocalSystem | undefined;
afterEach(async () => {
  await system?.stop();
  system = undefined;
});

async function start(): Promise<LocalSystem & { tableName: string }> {
  const tableName = `rc-${randomUUID().slice(0, 8)}`;
  system = await startLocalSystem({
    regions: REGIONS,
    rules: [],
    basePort: 0,
    controlPort: 0,
    lagMs: 200,
    reconcileEveryMs: 0,
    dynamoEndpoint: inject("dynamoEndpoint"),
    tableName,
  });
  return { ...system, tableName };
}
const run = (sys: LocalSystem, i: number, options: Parameters<typeof reconcile>[1] = {}) =>
  reconcile(
    { store: sys.regions[i]?.store as never, clock: systemClock, topology: { self: REGIONS[i] as string, regions: REGIONS } },
    { quietMs: 1000, aliveMs: 3000, ...options },
  );
const put = (url: string, key: string) =>
  fetch(`${url}/buckets/${key}`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: '{"capacity": 100, "refillRate": 10}',
  });
const settle = () => new Promise((r) => setTimeout(r, 1500));

describe("reconciler", () => {
  it("reports zero violations on a healthy converged system, and repairs a row deleted by hand", async () => {
    const sys = await start();
    const [a, b] = sys.regions;
    await put(a?.url as string, "healthy");
    await settle();
    await pacedLoad([a?.url as string, b?.url as string], { key: "healthy" }, 20, 2000); // share moves, counters grow
    await settle();
    const healthy = await run(sys, 0);
    expect(healthy.buckets.find((x) => x.key === "healthy")?.converged).toBe(true);
    expect(healthy.violations).toEqual([]);

    // An operator deletes eu-central-1's row by hand.
    const before = (await b?.store.getSlice("healthy"))?.capShare;
    await makeDynamoClient({ region: "eu-central-1", endpoint: sys.dynamoEndpoint }).send(
      new DeleteItemCommand({ TableName: sys.tableName, Key: { pk: { S: "healthy" }, sk: { S: "slice#eu-central-1" } } }),
    );
    await settle();
    const repair = await run(sys, 1);
    expect(repair.actions.map((x) => x.action)).toContain("repair-row");
    const repaired = await b?.store.getSlice("healthy");
    expect(repaired?.capShare).toBe(before); // exactly the free share
    await settle();
    const after = await run(sys, 0);
    expect(after.violations).toEqual([]);
    console.log(
      `reconcile: converged, 0 violations; eu-central-1 row deleted by hand re-created with ${repaired?.capShare} ppm (it had ${before})`,
    );
  });

  it("--evict on a partitioned region refuses while it was heard from recently, moves its share with --force, and says so", async () => {
    const sys = await start();
    const [a] = sys.regions;
    await put(a?.url as string, "evict-me");
    await settle();
    await fetch(`${sys.controlUrl}/partition`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"region": "eu-central-1"}',
    });
    const refused = await run(sys, 0, { evict: "eu-central-1" });
    expect(refused.actions).toEqual([
      expect.objectContaining({ action: "refused", detail: expect.stringMatching(/may be alive; use --force/) }),
    ]);
    const dry = await run(sys, 0, { evict: "eu-central-1", force: true, dryRun: true });
    expect(dry.actions).toEqual([expect.objectContaining({ action: "evict", applied: false })]);
    expect((await a?.store.getSlice("evict-me"))?.capShare).toBe(500_000n);
    const done = await run(sys, 0, { evict: "eu-central-1", force: true });
    expect(done.actions).toEqual([
      expect.objectContaining({
        key: "evict-me",
        action: "evict",
        applied: true,
        detail: expect.stringMatching(/absorbed eu-central-1's 500000 ppm/),
      }),
    ]);
    expect((await a?.store.getSlice("evict-me"))?.capShare).toBe(1_000_000n);
    const check = await run(sys, 0);
    expect(check.violations).toEqual([]);
  });

  it("a forecast event for eu-central-1 30 s ahead moves share there before the spike", async () => {
    const tableName = `fc-${randomUUID().slice(0, 8)}`;
    system = await startLocalSystem({
      regions: REGIONS,
      rules: [],
      basePort: 0,
      controlPort: 0,
      lagMs: 800,
      reconcileEveryMs: 1000,
      forecastLeadMs: 5000,
      dynamoEndpoint: inject("dynamoEndpoint"),
      tableName,
    });
    const [a, b] = system.regions;
    await put(a?.url as string, "agents");
    await settle();
    // Busy us-east-1 draws the share; eu-central-1 is idle.
    const load = pacedLoad([a?.url as string], { key: "agents" }, 10, 33_000);
    await new Promise((r) => setTimeout(r, 3000));
    const before = (await b?.store.getSlice("agents"))?.capShare ?? 0n;
    const from = Date.now() + 30_000;
    const res = await fetch(`${system.controlUrl}/events`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        "detail-type": "tokenbank.forecast",
        source: "test",
        detail: { key: "agents", region: "eu-central-1", expectedRate: 30, from, until: from + 20_000 },
      }),
    });
    expect(res.status).toBe(202);
    // Nothing moves early: the share follows the forecast only from shortly before its start.
    await new Promise((r) => setTimeout(r, 15_000));
    const earlyRow = await b?.store.getSlice("agents");
    const early = earlyRow?.capShare ?? 0n;
    while (Date.now() < from - 500) await new Promise((r) => setTimeout(r, 250));
    const atSpike = (await b?.store.getSlice("agents"))?.capShare ?? 0n;
    await load;
    console.log(
      `forecast: eu-central-1 held ${Number(before) / 1e4}% of the share before the event, ${Number(early) / 1e4}% 15 s later, ${Number(atSpike) / 1e4}% just before the forecast spike`,
    );
    // Before the window nothing moves toward eu-central-1. The busy region draws the refill: the
    // idle full slice hands it the rate it would waste (its capacity stays: us-east-1, refilled
    // at the whole rate, is not short).
    expect(early).toBeLessThanOrEqual(before);
    expect(earlyRow?.rateShare ?? 0n).toBeLessThan(200_000n);
    expect(atSpike).toBeGreaterThan(500_000n);
  }, 90_000);
});
