/**
 * Bursts on the local system (issue 13): a dry region reaches every free token of its peers in
 * about one round trip, never more than the bucket holds, and a request for the whole capacity
 * succeeds in any region while the others are idle.
 */
import { randomUUID } from "node:crypto";
import { afterEach, describe, expect, inject, it } from "vitest";
import { type LocalSystem, startLocalSystem } from "../../local/system.js";

let system: LocalSystem | undefined;
afterEach(async () => {
  await system?.stop();
  system = undefined;
});

const REGIONS = ["us-east-1", "eu-central-1", "ap-southeast-2"];

async function start(regions: number): Promise<LocalSystem> {
  system = await startLocalSystem({
    regions: REGIONS.slice(0, regions),
    rules: [],
    basePort: 0,
    controlPort: 0,
    lagMs: 800,
    dynamoEndpoint: inject("dynamoEndpoint"),
    tableName: `burst-${randomUUID().slice(0, 8)}`,
  });
  return system;
}

const rate = (url: string, body: unknown) =>
  fetch(`${url}/rate`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

async function putBucket(sys: LocalSystem, key: string, limits: { capacity: number; refillRate: number }): Promise<void> {
  const res = await fetch(`${sys.regions[0]?.url}/buckets/${key}`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(limits),
  });
  expect(res.status).toBeLessThan(300);
  // The peers lend from the bucket's replicated config: wait until every region has it.
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) {
    const configs = await Promise.all(sys.regions.map((r) => r.store.getConfig(key)));
    if (configs.every(Boolean)) return;
  }
  throw new Error("the config did not replicate");
}

/** 429s that did not say when to come back (no `Retry-After`, or `retryAfterMs` not a number). */
let silent429 = 0;

/**
 * `total` requests for one token each, `inFlight` at a time, into one region; the statuses seen,
 * and `onAllowed(n)` after the n-th 200.
 */
async function burst(
  url: string,
  key: string,
  total: number,
  inFlight: number,
  onAllowed?: (n: number) => void,
): Promise<Map<number, number>> {
  const statuses = new Map<number, number>();
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < total) {
        next++;
        const res = await rate(url, { key });
        const body = (await res.json()) as { retryAfterMs?: unknown };
        if (res.status === 429 && (!res.headers.get("retry-after") || typeof body.retryAfterMs !== "number")) silent429++;
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (res.status === 200) onAllowed?.(statuses.get(200) as number);
      }
    }),
  );
  return statuses;
}

describe("bursts into one region", () => {
  for (const regions of [2, 3]) {
    silent429 = 0;
    it(`${regions} regions, fresh bucket C = 37, no refill: 500 requests with 48 in flight admit exactly 37`, async () => {
      const sys = await start(regions);
      await putBucket(sys, "k", { capacity: 37, refillRate: 0 });
      const limiter = sys.regions[0]?.limiter;
      let roundsToAll = Number.NaN;
      const statuses = await burst(sys.regions[0]?.url as string, "k", 500, 48, (n) => {
        if (n === 37) roundsToAll = limiter?.stats.borrowRounds ?? Number.NaN;
      });
      console.log(
        `${regions} regions, C = 37: ${JSON.stringify(Object.fromEntries(statuses))}; borrow rounds until all 37: ${roundsToAll}`,
      );
      expect(statuses.get(200)).toBe(37);
      // Every free token is reached within two borrow rounds (each asks every peer at once) of the first denial.
      expect(roundsToAll).toBeGreaterThanOrEqual(1);
      expect(roundsToAll).toBeLessThanOrEqual(2);
      expect(statuses.get(429)).toBe(500 - 37);
      expect(silent429).toBe(0); // every 429 says when to come back, counting what borrowing can bring
      // The whole bucket now sits in the burst's region: its status shows no stranded tokens.
      const rows = await sys.regions[0]?.store.querySlices("k");
      const own = rows?.find((r) => r.region === REGIONS[0]);
      expect(own?.capShare).toBeGreaterThan(990_000n);
    });
  }

  it("2 regions, capacity 2: one request for 2 tokens is allowed in either region while the other idles", async () => {
    const sys = await start(2);
    await putBucket(sys, "two", { capacity: 2, refillRate: 0 });
    await putBucket(sys, "two-b", { capacity: 2, refillRate: 0 });
    const a = await rate(sys.regions[0]?.url as string, { key: "two", tokens: 2 });
    expect(a.status).toBe(200);
    const b = await rate(sys.regions[1]?.url as string, { key: "two-b", tokens: 2 });
    expect(b.status).toBe(200);
    // And never more: the bucket is spent, in both regions.
    for (const r of sys.regions) {
      const res = await rate(r.url, { key: "two", tokens: 1 });
      expect(res.status).toBe(429);
      const body = (await res.json()) as { reason?: string; retryAfterMs?: unknown };
      expect(body.reason).toBe("insufficient");
      expect(typeof body.retryAfterMs).toBe("number");
      expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    }
    // Above the capacity: its own reason, and no promise of a retry.
    const big = await rate(sys.regions[1]?.url as string, { key: "two", tokens: 3 });
    expect(await big.json()).toMatchObject({ reason: "exceeds_capacity", retryAfterMs: null });
  });
});
