/**
 * Hot path, one region, the same DynamoDB Local and the same load generator (autocannon) in one
 * run: tokenbank's HTTP service vs rate-limiter-flexible's DynamoDB store vs a textbook
 * read-then-write bucket, on one busy key at 1, 16 and 64 connections.
 */
import autocannon from "autocannon";
import type { DynamoBucketStore } from "../lambda/adapters/dynamodb/store.js";
import { systemClock } from "../lambda/adapters/system-clock.js";
import { BucketAdmin } from "../lambda/app/buckets.js";
import { serveRoutes } from "../local/http-adapter.js";
import { regionApp } from "../local/region.js";
import { type Competitor, startRateLimiterFlexible, startTextbookBucket } from "./competitors.js";

/** The percentiles of the latency distribution chart (autocannon's histogram keys). */
export const LATENCY_PERCENTILES = ["1", "10", "25", "50", "75", "90", "97.5", "99", "99.9"] as const;

/** One measured phase. */
export interface CompareRow {
  readonly system: string;
  readonly connections: number;
  readonly decisionsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** The latency distribution: ms at each of {@link LATENCY_PERCENTILES}. */
  readonly percentilesMs: readonly number[];
  readonly callsPerDecision: number;
  readonly errors: number;
}

/** Runs the comparison. */
export async function compareHotPath(
  store: DynamoBucketStore,
  endpoint: string,
  options: { seconds: number; connections: readonly number[] },
): Promise<CompareRow[]> {
  await new BucketAdmin({ store, clock: systemClock }).put("cmp", { capacity: 1_000_000_000, refillRate: 1, onError: "deny" }, "bench");
  const app = regionApp({ store, clock: systemClock, rules: [] });
  const tb = await serveRoutes(app.routes, 0);
  const total = () => Object.values(store.stats()).reduce((a, b) => a + b, 0);
  const systems: Competitor[] = [
    { name: "tokenbank", url: tb.url, calls: total, decisions: () => app.limiter.stats.decisions, close: tb.close },
    await startRateLimiterFlexible(endpoint, 1_000_000_000, 3600),
    await startTextbookBucket(endpoint, 1_000_000_000, 1),
  ];
  const rows: CompareRow[] = [];
  const load = (url: string, connections: number, duration: number) =>
    autocannon({
      url: `${url}/rate`,
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"key":"cmp"}',
      connections,
      duration,
    });
  try {
    // Warm everything first (the JVM under DynamoDB Local keeps getting faster for a while), then
    // measure the systems one after another at each concurrency, so no system gets a colder engine.
    for (let round = 0; round < 2; round++)
      for (const sys of systems) await load(sys.url, 16, Math.max(2, Math.round(options.seconds / 2)));
    for (const connections of options.connections) {
      for (const sys of systems) {
        const before = sys.calls();
        const decided = sys.decisions();
        const r = await load(sys.url, connections, options.seconds);
        await new Promise((res) => setTimeout(res, 300)); // let requests in flight at the end finish
        const decisions = Math.max(1, sys.decisions() - decided);
        rows.push({
          system: sys.name,
          connections,
          decisionsPerSecond: Math.round(decisions / options.seconds),
          p50Ms: r.latency.p50,
          p99Ms: r.latency.p99,
          percentilesMs: LATENCY_PERCENTILES.map((p) => r.latency[`p${p.replace(".", "_")}`] ?? Number.NaN),
          callsPerDecision: (sys.calls() - before) / decisions,
          errors: r.errors + r.timeouts + (r.statusCodeStats["503"]?.count ?? 0),
        });
      }
    }
  } finally {
    for (const sys of systems) await sys.close();
  }
  return rows;
}
