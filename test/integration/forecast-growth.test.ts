/**
 * Forecast growth on the local system (issue 13): a bucket that lets forecasts grow it shows the
 * grown limits in `/status` before the announced surge starts, serves the surge with them, and
 * shows its configured limits again after the window; every change is in its history.
 */
import { randomUUID } from "node:crypto";
import { afterEach, describe, expect, inject, it } from "vitest";
import { type LocalSystem, startLocalSystem } from "../../local/system.js";

let system: LocalSystem | undefined;
afterEach(async () => {
  await system?.stop();
  system = undefined;
});

const json = async (res: Promise<Response>) => (await res).json() as Promise<Record<string, unknown>>;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("forecast growth", () => {
  it("a surge announced ahead grows the bucket to 4× its capacity before it starts, and the configured capacity returns after it ends", async () => {
    system = await startLocalSystem({
      regions: ["us-east-1", "eu-central-1"],
      rules: [],
      basePort: 0,
      controlPort: 0,
      lagMs: 300,
      reconcileEveryMs: 1000, // the scheduled forecaster's period here
      dynamoEndpoint: inject("dynamoEndpoint"),
      tableName: `grow-${randomUUID().slice(0, 8)}`,
    });
    const [a, b] = system.regions;
    const put = await fetch(`${a?.url}/buckets/surge`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ capacity: 25, refillRate: 5, forecastGrowth: true, maxCapacity: 100, maxRefillRate: 20 }),
    });
    expect(put.status).toBe(201);
    const from = Date.now() + 3000;
    const until = from + 3000;
    const accepted = await fetch(`${system.controlUrl}/events`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        "detail-type": "tokenbank.forecast",
        detail: { key: "surge", region: "eu-central-1", expectedRate: 40, from, until },
      }),
    });
    expect(accepted.status).toBe(202);

    // Before the surge starts: grown (40/s asked: refill min(20, 40), capacity min(100, 25·40/5)), in both regions.
    let grown: Record<string, unknown> = {};
    for (; Date.now() < from; await sleep(100)) {
      grown = await json(fetch(`${b?.url}/status/surge`));
      if (grown.capacity === 100) break;
    }
    expect(Date.now()).toBeLessThan(from);
    expect(grown).toMatchObject({
      capacity: 100,
      refillRate: 20,
      scaling: { by: "forecaster:grow", configured: { capacity: 25, refillRate: 5 } },
    });

    // The surge, 40 requests at eu-central-1: more than the configured 25 are served.
    await sleep(Math.max(0, from - Date.now()));
    let admitted = 0;
    for (let i = 0; i < 40; i++) {
      const res = await fetch(`${b?.url}/rate`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ key: "surge" }),
      });
      if (res.status === 200) admitted++;
    }
    expect(admitted).toBeGreaterThan(25);

    // After the window: the configured limits again, and the history tells the story.
    let after: Record<string, unknown> = {};
    for (const deadline = until + 6000; Date.now() < deadline; await sleep(200)) {
      after = await json(fetch(`${a?.url}/status/surge`));
      if (Date.now() > until && after.capacity === 25) break;
    }
    expect(after).toMatchObject({ capacity: 25, refillRate: 5 });
    expect(after.scaling).toBeUndefined();
    const history = (await json(fetch(`${a?.url}/buckets/surge/history`))).history as { by: string }[];
    // The event's region (eu-central-1) grows at once; the home region's scheduled run may grow it
    // too before it sees that write replicated (same limits: one more history line, no more tokens).
    const by = history.map((h) => h.by);
    expect(by[0]).toBe("anonymous");
    expect(by.at(-1)).toBe("forecaster:restore");
    expect(by.slice(1, -1).length).toBeGreaterThanOrEqual(1);
    expect(by.slice(1, -1).every((x) => x === "forecaster:grow")).toBe(true);
  });
});
