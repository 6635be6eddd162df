/**
 * Hot-path benchmark: DynamoDB requests per decision and throughput of the regional service
 * (real handlers over HTTP, DynamoDB Local), with a single-client baseline in the same run.
 */

import { systemClock } from "../lambda/adapters/system-clock.js";
import { BucketAdmin } from "../lambda/app/buckets.js";
import type { BucketStore } from "../lambda/ports/bucket-store.js";
import { serveRoutes } from "../local/http-adapter.js";
import { regionRoutes } from "../local/region.js";

/** Result of one load phase. */
export interface PhaseResult {
  readonly name: string;
  readonly clients: number;
  readonly decisions: number;
  readonly allowed: number;
  readonly seconds: number;
  readonly callsPerDecision: number;
  readonly callsPerAllowed: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

const totalCalls = (s: Record<string, number>) => Object.values(s).reduce((a, b) => a + b, 0);
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;

/** Runs `decisions` POST /rate on `key` from `clients` concurrent loops. */
async function phase(url: string, store: BucketStore, name: string, key: string, clients: number, decisions: number): Promise<PhaseResult> {
  const before = totalCalls(store.stats());
  const latencies: number[] = [];
  let sent = 0;
  let allowed = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (sent < decisions) {
        sent++;
        const t = performance.now();
        const res = await fetch(`${url}/rate`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ key }),
        });
        await res.arrayBuffer();
        latencies.push(performance.now() - t);
        if (res.status === 200) allowed++;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const calls = totalCalls(store.stats()) - before;
  latencies.sort((a, b) => a - b);
  return {
    name,
    clients,
    decisions: sent,
    allowed,
    seconds,
    callsPerDecision: calls / sent,
    callsPerAllowed: allowed === 0 ? Number.NaN : calls / allowed,
    p50Ms: pct(latencies, 0.5),
    p99Ms: pct(latencies, 0.99),
  };
}

/** The hot-path phases over one store. */
export async function runHotPath(store: BucketStore, options: { decisions: number }): Promise<PhaseResult[]> {
  const admin = new BucketAdmin({ store, clock: systemClock });
  // Never full after its first take: every take is the commuting increment form.
  await admin.put("bench-steady", { capacity: 1_000_000_000, refillRate: 1, onError: "deny" }, "bench");
  // Always full (refills faster than it is drained): every take is the absolute "full" form.
  await admin.put("bench-full", { capacity: 1_000_000, refillRate: 1_000_000, onError: "deny" }, "bench");
  await admin.put("bench-empty", { capacity: 1, refillRate: 0, onError: "deny" }, "bench");
  const server = await serveRoutes(regionRoutes({ store, clock: systemClock, rules: [] }), 0);
  try {
    // Warm the instance cache (one cold read per key), then measure.
    await phase(server.url, store, "warm-up", "bench-steady", 1, 20);
    await phase(server.url, store, "warm-up", "bench-empty", 1, 5);
    const out: PhaseResult[] = [];
    out.push(await phase(server.url, store, "steady, allowed", "bench-steady", 1, options.decisions));
    for (const clients of [16, 64]) out.push(await phase(server.url, store, "steady, allowed", "bench-steady", clients, options.decisions));
    await phase(server.url, store, "warm-up", "bench-full", 1, 5);
    for (const clients of [1, 16])
      out.push(await phase(server.url, store, "full bucket, allowed", "bench-full", clients, options.decisions));
    out.push(await phase(server.url, store, "empty bucket, denied", "bench-empty", 16, options.decisions));
    return out;
  } finally {
    await server.close();
  }
}
