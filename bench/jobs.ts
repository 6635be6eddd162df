/**
 * The scheduled jobs at scale (issue 15): N buckets (default 100,000) in a two-region replica on
 * DynamoDB Local, 1% of them with a predictive throttle a forecast applied and whose surge is
 * over. Runs the forecaster and the reconciler as their functions do (40 s budget, resumable),
 * and reports each run's time, buckets visited, DynamoDB calls, and how many runs a full pass
 * took. `tsx bench/jobs.ts [N]`, or `npm run bench -- --only jobs --buckets N`.
 */
import { BatchWriteItemCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { configToItem, forecastToItem, historyToItem, sliceToItem } from "../lambda/adapters/dynamodb/items.js";
import { DynamoBucketStore, makeDynamoClient } from "../lambda/adapters/dynamodb/store.js";
import { systemClock } from "../lambda/adapters/system-clock.js";
import { type ForecasterMemory, runForecaster } from "../lambda/app/forecasting.js";
import { makeSlice } from "../lambda/app/new-row.js";
import { reconcile } from "../lambda/app/reconciler.js";
import type { DynamoLocal } from "../local/dynamodb-local.js";
import { ensureTable } from "../local/table.js";

/** One job run. */
export interface JobRun {
  readonly job: "forecaster" | "reconciler";
  readonly run: number;
  readonly seconds: number;
  readonly visited: number;
  readonly complete: boolean;
  /** DynamoDB calls by purpose. */
  readonly calls: Record<string, number>;
  /** Predictive throttles restored (forecaster). */
  readonly restored: number;
}

const topology = { self: "us-east-1", regions: ["us-east-1", "eu-central-1"] };

async function writeAll(client: DynamoDBClient, table: string, items: Record<string, unknown>[]): Promise<void> {
  const batches: Record<string, unknown>[][] = [];
  for (let i = 0; i < items.length; i += 25) batches.push(items.slice(i, i + 25));
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < batches.length) {
        let pending = batches[next++] as Record<string, unknown>[];
        while (pending.length > 0) {
          const out = await client.send(
            new BatchWriteItemCommand({ RequestItems: { [table]: pending.map((Item) => ({ PutRequest: { Item: Item as never } })) } }),
          );
          pending = (out.UnprocessedItems?.[table] ?? []).map((r) => r.PutRequest?.Item as Record<string, unknown>);
        }
      }
    }),
  );
}

/** Fills a fresh table with `n` buckets, as us-east-1's replica of a two-region deployment. */
async function populate(client: DynamoDBClient, table: string, n: number, nowMs: number): Promise<void> {
  const now = BigInt(nowMs) * 1000n;
  const limits = { capacity: 100, refillRate: 50, onError: "deny" as const, ttl: 86_400 };
  const items: Record<string, unknown>[] = [];
  for (let i = 0; i < n; i++) {
    const key = `bucket-${String(i).padStart(7, "0")}`;
    for (const region of topology.regions) {
      items.push(sliceToItem(makeSlice(key, { ...topology, self: region }, limits, { kind: "rule", rule: "bench" }, now)));
    }
    if (i % 100 === 0) {
      // A predictive bucket the forecaster throttled for a surge that ended a minute ago.
      const throttled = { ...limits, refillRate: 10 };
      items.push(
        configToItem({
          key,
          limits: throttled,
          version: 2,
          updatedAt: nowMs - 120_000,
          updatedBy: "forecaster:throttle",
          origin: topology.self,
          predictive: true,
          bounds: { minRefillRate: 10 },
        }),
        historyToItem({
          key,
          version: 1,
          at: nowMs - 600_000,
          by: "ops",
          region: topology.self,
          inherit: "proportional",
          old: null,
          new: limits,
        }),
        historyToItem({
          key,
          version: 2,
          at: nowMs - 120_000,
          by: "forecaster:throttle",
          region: topology.self,
          inherit: "as-is",
          old: limits,
          new: throttled,
        }),
        forecastToItem({
          key,
          region: "eu-central-1",
          expectedRate: 500,
          fromMs: nowMs - 180_000,
          untilMs: nowMs - 60_000,
          source: "event",
        }),
      );
    }
  }
  await writeAll(client, table, items);
}

/** Populates, then runs each job until a full pass completes (at most `maxRuns` runs each). */
export async function benchJobs(
  ddb: DynamoLocal,
  n: number,
  options: { budgetMs?: number; maxRuns?: number } = {},
): Promise<{ populateS: number; runs: JobRun[] }> {
  const client = makeDynamoClient({ region: topology.self, endpoint: ddb.endpoint, requestTimeoutMs: 30_000 });
  const table = `jobs-${Date.now()}`;
  await ensureTable(client, table);
  const t0 = performance.now();
  await populate(client, table, n, Date.now());
  const populateS = (performance.now() - t0) / 1000;
  const runs: JobRun[] = [];
  const budgetMs = options.budgetMs ?? 40_000;
  const memory: ForecasterMemory = new Map();
  for (const job of ["forecaster", "reconciler"] as const) {
    for (let run = 1; run <= (options.maxRuns ?? 5); run++) {
      const store = new DynamoBucketStore({ client, tableName: table, region: topology.self });
      const started = performance.now();
      const deps = { store, clock: systemClock, topology };
      const result =
        job === "forecaster"
          ? await runForecaster(deps, memory, { budgetMs }).then((r) => ({
              visited: r.visited,
              complete: r.complete,
              restored: r.restored.length,
            }))
          : await reconcile(deps, { budgetMs, snapshots: false }).then((r) => ({ visited: r.visited, complete: r.complete, restored: 0 }));
      runs.push({
        job,
        run,
        seconds: (performance.now() - started) / 1000,
        calls: { ...store.stats() } as Record<string, number>,
        ...result,
      });
      if (result.complete) break;
    }
  }
  client.destroy();
  return { populateS, runs };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { startDynamoLocal } = await import("../local/dynamodb-local.js");
  const n = Number(process.argv[2] ?? 100_000);
  const ddb = await startDynamoLocal();
  try {
    const out = await benchJobs(ddb, n);
    console.log(`populated ${n} buckets in ${out.populateS.toFixed(1)} s`);
    console.table(out.runs.map((r) => ({ ...r, seconds: r.seconds.toFixed(1), calls: JSON.stringify(r.calls) })));
  } finally {
    await ddb.stop();
  }
}
