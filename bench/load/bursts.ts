/**
 * Capacity-dominated bursts on the local system (issue 13): the shipped simulator scenarios'
 * shapes, run against `npm start`'s entry point in its own process with open-loop load from
 * another. Per case: what one region's burst (or rotating bursts) got against one perfect
 * central bucket facing the same arrivals, and the answers other than 200/429.
 */
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DynamoLocal } from "../../local/dynamodb-local.js";
import type { LoadTarget } from "./open-loop.js";
import { freePorts, runOpenLoop, startLocalSystemProcess } from "./processes.js";
import { idealAdmitted } from "./regimes.js";

const REGIONS = ["us-east-1", "eu-central-1", "ap-southeast-2"];

/** One burst case. */
export interface BurstCase {
  readonly name: string;
  readonly regions: number;
  readonly capacity: number;
  readonly refill: number;
  readonly lagMs: number;
  readonly seconds: number;
  /** The load, per region index: requests/s within `[fromS, untilS)`. */
  readonly load: readonly { readonly region: number; readonly rate: number; readonly fromS: number; readonly untilS: number }[];
}

/** What one case showed. */
export interface BurstResult {
  readonly name: string;
  readonly regions: number;
  readonly sent: number;
  readonly admitted: number;
  /** One perfect central bucket (starts full) facing the same scheduled arrivals. */
  readonly ideal: number;
  /** C + r·T: no run may admit more. */
  readonly bound: number;
  /** Answers other than 200 and 429. */
  readonly bad: number;
  readonly p99Ms: number;
}

/** The local versions of the simulator's capacity-dominated scenarios. */
export function burstCases(): BurstCase[] {
  const oneRegion = (regions: number): BurstCase => ({
    name: `one-region-burst (fresh C = 37, no refill, 500/s for 1 s into one region)`,
    regions,
    capacity: 37,
    refill: 0,
    lagMs: 800,
    seconds: 1,
    load: [{ region: 0, rate: 500, fromS: 0, untilS: 1 }],
  });
  // Rotating: each region in turn asks 40·r for 2 s, 25 s apart (the bucket refills in 20 s); a trickle of 0.5/s everywhere.
  const rotating: BurstCase = {
    name: "rotating-bursts (C = 100, r = 5/s, 200/s for 2 s in each region in turn, trickle 0.5/s)",
    regions: 3,
    capacity: 100,
    refill: 5,
    lagMs: 1000,
    seconds: 77,
    load: [
      ...[0, 1, 2].map((region) => ({ region, rate: 0.5, fromS: 0, untilS: 77 })),
      ...[0, 1, 2].map((region) => ({ region, rate: 200, fromS: 25 * region + 2, untilS: 25 * region + 4 })),
    ],
  };
  const small: BurstCase = {
    name: "small-bucket (C = 3, r = 1/s, 2/s into one region of three)",
    regions: 3,
    capacity: 3,
    refill: 1,
    lagMs: 1000,
    seconds: 30,
    load: [{ region: 0, rate: 2, fromS: 0, untilS: 30 }],
  };
  return [oneRegion(2), oneRegion(3), small, rotating];
}

/** Runs one case on a fresh table and a fresh local system process. */
export async function runBurstCase(ddb: DynamoLocal, c: BurstCase, index: number): Promise<BurstResult> {
  const rulesFile = join(tmpdir(), `tokenbank-bench-bursts-${process.pid}.yaml`);
  writeFileSync(rulesFile, "rules: []\n");
  const regions = REGIONS.slice(0, c.regions);
  const system = await startLocalSystemProcess({
    regions,
    lagMs: c.lagMs,
    endpoint: ddb.endpoint,
    table: `bursts-${Date.now()}-${index}`,
    namespace: `bursts${index}t${Date.now()}`,
    port: await freePorts(regions.length),
    controlPort: await freePorts(1),
    rulesFile,
  });
  try {
    const res = await fetch(`${system.urls[0]}/buckets/k`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ capacity: c.capacity, refillRate: c.refill }),
    });
    if (!res.ok) throw new Error(`PUT /buckets/k: ${res.status} ${await res.text()}`);
    await new Promise((r) => setTimeout(r, 2 * c.lagMs + 1000)); // the config replicates everywhere
    const targets: LoadTarget[] = c.load.map((l, i) => ({
      name: `${i}`,
      url: `${system.urls[l.region]}/rate`,
      rate: l.rate,
      body: JSON.stringify({ key: "k" }),
      fromS: l.fromS,
      untilS: l.untilS,
    }));
    const results = await runOpenLoop({ seconds: c.seconds, targets });
    const arrivals = c.load.flatMap((l) =>
      Array.from({ length: Math.floor((l.untilS - l.fromS) * l.rate) }, (_, i) => l.fromS * 1000 + (i * 1000) / l.rate),
    );
    const admitted = results.reduce((a, r) => a + (r.statuses["200"] ?? 0), 0);
    const bad = results.reduce(
      (a, r) => a + Object.entries(r.statuses).reduce((b, [s, n]) => b + (s === "200" || s === "429" ? 0 : n), 0),
      0,
    );
    return {
      name: c.name,
      regions: c.regions,
      sent: results.reduce((a, r) => a + r.sent, 0),
      admitted,
      ideal: idealAdmitted(arrivals, c.capacity, c.refill),
      bound: Math.floor(c.capacity + c.refill * c.seconds),
      bad,
      p99Ms: Math.max(...results.map((r) => r.p99Ms)),
    };
  } finally {
    await system.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  // `tsx bench/load/bursts.ts`: the cases alone, on a fresh DynamoDB Local.
  const { startDynamoLocal } = await import("../../local/dynamodb-local.js");
  const ddb = await startDynamoLocal();
  try {
    const rows = [];
    for (const [i, c] of burstCases().entries()) rows.push(await runBurstCase(ddb, c, i));
    console.table(rows.map((r) => ({ ...r, utilisation: `${((100 * r.admitted) / Math.max(1, r.ideal)).toFixed(1)}%` })));
  } finally {
    await ddb.stop();
  }
}
