/**
 * The load benchmark a user can trust: the local system (`npm start`'s entry point) in its own
 * process, open-loop paced load from another process, in 1, 2 and 3 regions, at the refill
 * boundary, draining, drained and with a partition in the middle. Per regime it reports the
 * answers other than 200/429, latency against the idle latency of the same run, admissions
 * against the exact bound and an ideal central bucket, DynamoDB calls per decision by writer,
 * failed take writes by cause, and the engine's CPU per decision.
 */
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { QueryCommand } from "@aws-sdk/client-dynamodb";
import { makeDynamoClient } from "../../lambda/adapters/dynamodb/store.js";
import type { DynamoLocal } from "../../local/dynamodb-local.js";
import type { TargetResult } from "./open-loop.js";
import { freePorts, runOpenLoop, startLocalSystemProcess } from "./processes.js";

/** One load regime. */
export interface Regime {
  readonly name: string;
  readonly regions: readonly string[];
  readonly lagMs: number;
  readonly capacity: number;
  readonly refill: number;
  /** Requests per second into each region. */
  readonly ratePerRegion: number;
  readonly seconds: number;
  /** Cut the last region off from `atS` to `healS` seconds into the load. */
  readonly partition?: { readonly atS: number; readonly healS: number };
}

/** What one regime showed. */
export interface RegimeResult {
  readonly regime: Regime;
  readonly decisions: number;
  readonly allowed: number;
  /** Answers other than 200 and 429, by status ("0": no answer). */
  readonly bad: Record<string, number>;
  /** A few of their bodies, with counts. */
  readonly badBodies: Record<string, number>;
  readonly idleP99Ms: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  /** C + r·T over the load's span: no window may admit more. */
  readonly bound: number;
  /** What one perfect central bucket admits facing the same arrivals. */
  readonly ideal: number;
  /** DynamoDB calls per decision, by writer (summed over regions and functions). */
  readonly callsPerDecision: Record<string, number>;
  /** Failed take writes by cause, per 1,000 decisions. */
  readonly takeFailuresPer1000: Record<string, number>;
  /** Decisions by the take writes they needed (index = writes). */
  readonly writesPerDecision: readonly number[];
  readonly engineCpuMsPerDecision: number;
  /** Seconds from heal until every replica showed the same shares (under load), if partitioned. */
  readonly agreeAfterHealS?: number | undefined;
}

const REGIONS = ["us-east-1", "eu-central-1", "ap-southeast-2"];
/** Seconds of the regime's own load on another key before anything is measured. */
const WARM_UP_S = 10;

/** The regimes of `npm run bench` (C = 60, r = 30/s on one key, as in the issue that asked for them). */
export function defaultRegimes(seconds: number, stretch: boolean): Regime[] {
  const base = { lagMs: 1200, capacity: 60, refill: 30, seconds };
  const regimes: Regime[] = [
    { ...base, name: "1 region at the refill rate (the full boundary)", regions: REGIONS.slice(0, 1), ratePerRegion: 30 },
    { ...base, name: "1 region at 2× the refill rate (draining, then drained)", regions: REGIONS.slice(0, 1), ratePerRegion: 60 },
    { ...base, name: "1 region at 5× the refill rate (drained)", regions: REGIONS.slice(0, 1), ratePerRegion: 150 },
    { ...base, name: "2 regions, lag 1.2 s, 30/s into each", regions: REGIONS.slice(0, 2), ratePerRegion: 30 },
    { ...base, name: "3 regions, lag 1.2 s, 50/s into each", regions: REGIONS, ratePerRegion: 50 },
    {
      ...base,
      name: `3 regions, lag 1.2 s, 50/s into each, ${REGIONS[2]} cut off from ${Math.round(seconds / 3)} s to ${Math.round((2 * seconds) / 3)} s`,
      regions: REGIONS,
      ratePerRegion: 50,
      partition: { atS: Math.round(seconds / 3), healS: Math.round((2 * seconds) / 3) },
    },
  ];
  if (stretch) regimes.push({ ...base, name: "3 regions, lag 1.2 s, 100/s into each (stretch)", regions: REGIONS, ratePerRegion: 100 });
  return regimes;
}

type Stats = {
  regions: Record<
    string,
    {
      rate: {
        calls: Record<string, number>;
        limiter: { decisions: number; failures: Record<string, number>; writesPerDecision: (number | null)[] };
      };
      merge: { calls: Record<string, number> };
    }
  >;
};

const getJson = async <T>(url: string): Promise<T> => (await (await fetch(url)).json()) as T;
const post = (url: string, body: unknown, method = "POST") =>
  fetch(url, { method, headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

/** Sums two stats snapshots' differences over regions. */
function delta(before: Stats, after: Stats) {
  const calls: Record<string, number> = {};
  const failures: Record<string, number> = {};
  const writes: number[] = [];
  for (const [region, a] of Object.entries(after.regions)) {
    const b = before.regions[region];
    for (const [source, prior] of [
      [a.rate.calls, b?.rate.calls ?? {}],
      [a.merge.calls, b?.merge.calls ?? {}],
    ] as const) {
      for (const [k, v] of Object.entries(source)) calls[k] = (calls[k] ?? 0) + v - (prior[k] ?? 0);
    }
    for (const [k, v] of Object.entries(a.rate.limiter.failures)) failures[k] = (failures[k] ?? 0) + v - (b?.rate.limiter.failures[k] ?? 0);
    a.rate.limiter.writesPerDecision.forEach((v, i) => {
      writes[i] = (writes[i] ?? 0) + (v ?? 0) - (b?.rate.limiter.writesPerDecision[i] ?? 0);
    });
  }
  return { calls, failures, writes: Array.from(writes, (v) => v ?? 0) };
}

/** One token per arrival into a perfect central bucket (starts full): how many it admits. Exact in integers. */
export function idealAdmitted(arrivalsMs: readonly number[], capacity: number, refill: number): number {
  const sorted = arrivalsMs.map((ms) => Math.round(ms * 1000)).sort((a, b) => a - b);
  const scale = 1_000_000; // level in tokens × 10⁶; refill adds `refill` per µs in that unit
  let level = capacity * scale;
  let last = sorted[0] ?? 0;
  let admitted = 0;
  for (const t of sorted) {
    level = Math.min(capacity * scale, level + (t - last) * refill);
    last = t;
    if (level >= scale) {
      level -= scale;
      admitted++;
    }
  }
  return admitted;
}

/** Every replica's view of each region's shares of `key`, as one comparable string per replica. */
async function views(endpoint: string, namespace: string, table: string, regions: readonly string[], key: string): Promise<string[]> {
  return Promise.all(
    regions.map(async (region) => {
      const client = makeDynamoClient({ region, endpoint, requestTimeoutMs: 30_000, localNamespace: namespace });
      try {
        const out = await client.send(
          new QueryCommand({
            TableName: table,
            KeyConditionExpression: "pk = :pk AND begins_with(sk, :s)",
            ExpressionAttributeValues: { ":pk": { S: key }, ":s": { S: "slice#" } },
            ConsistentRead: true,
          }),
        );
        return (out.Items ?? [])
          .map((i) => `${i.reg?.S}:${i.cs?.N}/${i.rs?.N}`)
          .sort()
          .join(" ");
      } finally {
        client.destroy();
      }
    }),
  );
}

/** Runs one regime on a fresh table and a fresh local system process. */
export async function runRegime(ddb: DynamoLocal, regime: Regime, index: number): Promise<RegimeResult> {
  const table = `load-${Date.now()}-${index}`;
  // Its own namespace: no stream records of an earlier regime in its way (docs/benchmarks.md).
  const namespace = `load${index}t${Date.now()}`;
  const rulesFile = join(tmpdir(), `tokenbank-bench-rules-${process.pid}.yaml`);
  writeFileSync(rulesFile, "rules: []\n");
  const system = await startLocalSystemProcess({
    regions: regime.regions,
    lagMs: regime.lagMs,
    endpoint: ddb.endpoint,
    table,
    namespace,
    port: await freePorts(regime.regions.length),
    controlPort: await freePorts(1),
    rulesFile,
  });
  try {
    const first = system.urls[0] as string;
    for (const [key, capacity, refill] of [
      ["k", regime.capacity, regime.refill],
      ["warm", regime.capacity, regime.refill],
      ["idle", 1_000_000_000, 1],
    ] as const) {
      const res = await post(`${first}/buckets/${key}`, { capacity, refillRate: refill }, "PUT");
      if (!res.ok) throw new Error(`PUT /buckets/${key}: ${res.status} ${await res.text()}`);
    }
    // Let the config replicate everywhere before the clock starts.
    await new Promise((r) => setTimeout(r, regime.lagMs * 2 + 1000));
    const body = (key: string) => JSON.stringify({ key });
    // Warm up (the engine's and the server's JITs) with the regime's own load on another key of
    // the same size, so that what follows measures the steady state, not a cold start.
    await runOpenLoop({
      seconds: WARM_UP_S,
      targets: system.urls.map((url, i) => ({ name: `warm-${i}`, url: `${url}/rate`, rate: regime.ratePerRegion, body: body("warm") })),
    });
    const idle = await runOpenLoop({
      seconds: 5,
      targets: system.urls.map((url, i) => ({ name: `idle-${i}`, url: `${url}/rate`, rate: 5, body: body("idle") })),
    });
    const idleLatencies = idle.flatMap((t) => [t.p99Ms]);
    const before = await getJson<Stats>(`${system.controlUrl}/stats`);
    const cpuBefore = ddb.cpuMs();
    const timers: NodeJS.Timeout[] = [];
    let healedAt: number | undefined;
    if (regime.partition) {
      const cut = regime.regions[regime.regions.length - 1];
      timers.push(setTimeout(() => void post(`${system.controlUrl}/partition`, { region: cut }), regime.partition.atS * 1000));
      timers.push(
        setTimeout(() => {
          healedAt = performance.now();
          void post(`${system.controlUrl}/heal`, {});
        }, regime.partition.healS * 1000),
      );
    }
    // Watch the replicas' views after the heal, while the load goes on.
    let agreedAt: number | undefined;
    const watching = (async () => {
      if (!regime.partition) return;
      while (healedAt === undefined) await new Promise((r) => setTimeout(r, 50));
      const until = healedAt + 60_000;
      while (performance.now() < until) {
        const v = await views(ddb.endpoint, namespace, table, regime.regions, "k").catch(() => []);
        if (v.every((x) => x === v[0]) && (v[0]?.split(" ").length ?? 0) === regime.regions.length) {
          agreedAt = performance.now();
          return;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const loaded = await runOpenLoop({
      seconds: regime.seconds,
      targets: system.urls.map((url, i) => ({
        name: regime.regions[i] as string,
        url: `${url}/rate`,
        rate: regime.ratePerRegion,
        body: body("k"),
      })),
    });
    for (const t of timers) clearTimeout(t);
    await watching;
    const cpu = ddb.cpuMs() - cpuBefore;
    const after = await getJson<Stats>(`${system.controlUrl}/stats`);
    return summarize(
      regime,
      loaded,
      Math.max(...idleLatencies),
      before,
      after,
      cpu,
      agreedAt && healedAt ? (agreedAt - healedAt) / 1000 : undefined,
    );
  } finally {
    // Tables are kept (a regime's are small); what slowed the engine down was the hot path's
    // volume of writes, so bench/run.ts gives the regimes a fresh engine.
    await system.stop();
  }
}

function summarize(
  regime: Regime,
  loaded: readonly TargetResult[],
  idleP99Ms: number,
  before: Stats,
  after: Stats,
  cpuMs: number,
  agreeAfterHealS: number | undefined,
): RegimeResult {
  const statuses: Record<string, number> = {};
  for (const t of loaded) for (const [s, n] of Object.entries(t.statuses)) statuses[s] = (statuses[s] ?? 0) + n;
  const decisions = (statuses["200"] ?? 0) + (statuses["429"] ?? 0);
  const bad = Object.fromEntries(Object.entries(statuses).filter(([s]) => s !== "200" && s !== "429"));
  const allowed = statuses["200"] ?? 0;
  // Every scheduled arrival, all regions merged: what one central bucket would have faced.
  const arrivals = regime.regions.flatMap(() =>
    Array.from({ length: Math.floor(regime.seconds * regime.ratePerRegion) }, (_, i) => (i * 1000) / regime.ratePerRegion),
  );
  const d = delta(before, after);
  const per = (n: number) => (decisions === 0 ? 0 : n / decisions);
  return {
    regime,
    decisions,
    allowed,
    bad,
    badBodies: Object.assign({}, ...loaded.map((t) => t.badBodies)),
    idleP99Ms,
    p50Ms: Math.max(...loaded.map((t) => t.p50Ms)),
    p99Ms: Math.max(...loaded.map((t) => t.p99Ms)),
    p999Ms: Math.max(...loaded.map((t) => t.p999Ms)),
    bound: regime.capacity + regime.refill * regime.seconds,
    ideal: idealAdmitted(arrivals, regime.capacity, regime.refill),
    callsPerDecision: Object.fromEntries(
      Object.entries(d.calls)
        .filter(([, v]) => v > 0)
        .map(([k, v]) => [k, per(v)]),
    ),
    takeFailuresPer1000: Object.fromEntries(Object.entries(d.failures).map(([k, v]) => [k, per(v) * 1000])),
    writesPerDecision: d.writes,
    engineCpuMsPerDecision: per(cpuMs),
    agreeAfterHealS,
  };
}
