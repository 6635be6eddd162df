/**
 * Global accuracy on the local multi-region system (real DynamoDB Local, the Global Tables
 * emulator, tokenbank's real handlers over HTTP): the simulator's demand traces, compressed in time
 * and scaled down to what one DynamoDB Local serves, replayed open-loop against the four
 * strategies at once, on the same replication lag.
 *
 * Time here is wall-clock, so an admission's instant is only known to lie between the request's
 * send and its answer. The reported over-admission is the largest excess that those intervals
 * *prove*: for windows from a request's send to another's answer, the admissions whose whole
 * interval lies inside, minus the bound for the window's length. It cannot see an excess smaller
 * than the refill during one request's latency (≈ r × a few ms); the simulator's figures are exact.
 */
import { performance } from "node:perf_hooks";
import { DeleteTableCommand } from "@aws-sdk/client-dynamodb";
import { makeDynamoClient } from "../lambda/adapters/dynamodb/store.js";
import { parseRules } from "../lambda/core/rules.js";
import { GlobalTablesEmulator } from "../local/global-tables.js";
import { StreamTailer } from "../local/stream-tailer.js";
import { startLocalSystem } from "../local/system.js";
import { ensureTable } from "../local/table.js";
import { arrivals, idealTimes } from "../sim/baselines.js";
import { parseScenario, SCENARIOS, type Scenario } from "../sim/scenario.js";
import { gcounter, lwwTake, staticTake, type Take } from "./local-baselines.js";

/** One strategy's result on one (trace, lag). */
export interface LocalAccuracyRow {
  readonly scenario: string;
  readonly lagMs: number;
  readonly strategy: string;
  readonly ideal: number;
  readonly admitted: number;
  readonly utilisation: number;
  /** Largest proven excess over C + r·Δt, tokens (≤ 0: none proven). */
  readonly worstOverAdmission: number;
  readonly errors: number;
  /** Median time to answer, ms. */
  readonly p50Ms: number;
  /** Admitted (by answer time) and ideal admissions per {@link BINS}th of the run. */
  readonly timeline: { readonly binS: number; readonly admitted: number[]; readonly ideal: number[] };
}

/** Bins of the timeline. */
export const BINS = 15;

function binned(timesS: readonly number[], durationS: number): number[] {
  const out = new Array<number>(BINS).fill(0);
  for (const t of timesS) {
    const i = Math.min(BINS - 1, Math.max(0, Math.floor((t / durationS) * BINS)));
    out[i] = (out[i] ?? 0) + 1;
  }
  return out;
}

interface Answer {
  readonly sendS: number;
  readonly answerS: number;
  readonly allowed: boolean;
}

/**
 * The largest excess the intervals prove, tokens: max over windows `[send_i, answer_j]` of the
 * admissions lying wholly inside, minus `capacity + rate · (answer_j − send_i)`. O(n²).
 */
export function provenOverAdmission(admitted: readonly { sendS: number; answerS: number }[], capacity: number, ratePerS: number): number {
  const byAnswer = [...admitted].sort((a, b) => a.answerS - b.answerS);
  let worst = -capacity;
  for (const start of admitted) {
    let inside = 0;
    for (const end of byAnswer) {
      if (end.sendS >= start.sendS) inside++;
      if (end.answerS < start.sendS) continue;
      worst = Math.max(worst, inside - capacity - ratePerS * (end.answerS - start.sendS));
    }
  }
  return worst;
}

/** A simulator trace scaled to `durationS` seconds and `refillRate` (capacity and demand scale with the rate). */
export function scaledTrace(name: string, durationS: number, refillRate: number, lagMs: number): Scenario {
  const base = parseScenario(SCENARIOS[name], name);
  const time = durationS / base.durationS;
  const rate = refillRate / base.refillRate;
  return parseScenario(
    {
      ...(SCENARIOS[name] as object),
      durationS,
      refillRate,
      capacity: Math.max(1, Math.round(base.capacity * rate)),
      lagMs,
      demand: Object.fromEntries(
        Object.entries(base.demand).map(([region, segs]) => [region, segs.map((s) => ({ fromS: s.fromS * time, rate: s.rate * rate }))]),
      ),
      shift: undefined,
    },
    name,
  );
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

/** Runs one trace at one lag on a fresh local system (its own tables in `dynamoEndpoint`). */
async function runOnce(dynamoEndpoint: string, sc: Scenario, lagMs: number, run: number, warmUp = false): Promise<LocalAccuracyRow[]> {
  const regions = ["us-east-1", "eu-central-1"];
  const { capacity, refillRate } = sc;
  const rules = parseRules({ rules: [{ name: "acc", key: "acc-{{ .Key }}", capacity, refillRate }] }, "bench");
  const system = await startLocalSystem({
    regions,
    rules,
    basePort: 0,
    controlPort: 0,
    lagMs,
    dynamoEndpoint,
    tableName: `acc${run}`,
    degradedAfterMs: Math.max(10_000, 4 * lagMs),
  });
  // The alternatives' table, replicated by its own emulator at the same lag.
  const baseTable = `accbase${run}`;
  const clients = new Map(regions.map((r) => [r, makeDynamoClient({ region: r, endpoint: dynamoEndpoint, requestTimeoutMs: 5000 })]));
  for (const [, client] of clients) await ensureTable(client, baseTable);
  const tailers = regions.map((region) => new StreamTailer({ endpoint: dynamoEndpoint, region, tableName: baseTable }));
  const gt = new GlobalTablesEmulator({ tableName: baseTable, clients, tailers, lagMs });
  try {
    for (const t of tailers) await t.start();
    gt.start();
    const key = "k";
    const clientOf = (i: number) => clients.get(regions[i] as string) as never;
    const counters = regions.map((region, i) => gcounter(clientOf(i), baseTable, key, region, capacity, refillRate));
    // Each region debits a peer's consumption when the peer's counter row arrives on its stream.
    let folds = Promise.resolve();
    for (const [i, tailer] of tailers.entries()) {
      tailer.subscribe((records) => {
        const arrived = records.some((r) => r.dynamodb?.Keys?.pk?.S === `gc#${key}` && r.dynamodb?.NewImage?._rep !== undefined);
        if (arrived) folds = folds.then(() => counters[i]?.fold()).catch(() => undefined);
      });
    }
    const strategies: { name: string; take: (region: number) => Promise<boolean> }[] = [
      {
        name: "(a) shared item, LWW",
        take: byRegion(regions.map((r, i) => lwwTake(clientOf(i), baseTable, key, r, capacity, refillRate))),
      },
      {
        name: "(b) static split",
        take: byRegion(regions.map((r, i) => staticTake(clientOf(i), baseTable, key, r, capacity, refillRate, regions.length))),
      },
      {
        name: "(c) G-counter",
        take: byRegion(counters.map((c) => c.take)),
      },
      {
        name: "(d) tokenbank",
        take: async (i) => {
          const res = await fetch(`${system.regions[i]?.url}/rate`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ key }),
          });
          await res.arrayBuffer();
          if (res.status === 200 || res.status === 429) return res.status === 200;
          throw new Error(`POST /rate answered ${res.status}`);
        },
      },
    ];
    const schedule = arrivals(sc);
    const answers = strategies.map(() => [] as Answer[]);
    const errors = strategies.map(() => 0);
    const inFlight: Promise<void>[] = [];
    const t0 = performance.now() + 500;
    const nowS = () => (performance.now() - t0) / 1000;
    for (const { t, region } of schedule) {
      const wait = t0 + t * 1000 - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      strategies.forEach((s, k) => {
        const sendS = nowS();
        inFlight.push(
          s.take(region).then(
            (allowed) => void answers[k]?.push({ sendS, answerS: nowS(), allowed }),
            (error) => {
              if (!errors[k])
                console.error(`${warmUp ? "warm-up, " : ""}${sc.name}, lag ${lagMs} ms, ${s.name}: first error: ${String(error)}`);
              errors[k] = (errors[k] ?? 0) + 1;
            },
          ),
        );
      });
    }
    await Promise.all(inFlight);
    await folds;
    const idealAt = idealTimes(
      sc,
      schedule.map((a) => a.t),
    ).map((us) => Number(us) / 1e6);
    const ideal = idealAt.length;
    return strategies.map((s, k) => {
      const mine = answers[k] ?? [];
      const admitted = mine.filter((a) => a.allowed);
      return {
        scenario: sc.name,
        lagMs,
        strategy: s.name,
        ideal,
        admitted: admitted.length,
        utilisation: admitted.length / Math.max(1, ideal),
        worstOverAdmission: provenOverAdmission(admitted, capacity, refillRate),
        errors: errors[k] ?? 0,
        p50Ms: 1000 * median(mine.map((a) => a.answerS - a.sendS)),
        timeline: {
          binS: sc.durationS / BINS,
          admitted: binned(
            admitted.map((a) => a.answerS),
            sc.durationS,
          ),
          ideal: binned(idealAt, sc.durationS),
        },
      };
    });
  } finally {
    await gt.stop();
    for (const t of tailers) await t.stop();
    await system.stop();
    // Drop this run's tables: DynamoDB Local (in memory) slows down as tables and streams pile up.
    for (const [, client] of clients)
      for (const TableName of [`acc${run}`, baseTable]) await client.send(new DeleteTableCommand({ TableName })).catch(() => undefined);
    for (const [, client] of clients) client.destroy();
  }
}

/** Decides in region `i` with that region's take. */
function byRegion(takes: readonly Take[]): (region: number) => Promise<boolean> {
  return (i) => takes[i]?.() ?? Promise.reject(new Error(`no region ${i}`));
}

/** Every (trace, lag) on the local system. */
export async function localAccuracy(
  dynamoEndpoint: string,
  options: { traces: readonly string[]; lagsMs: readonly number[]; durationS: number; refillRate: number; warmUpS?: number },
): Promise<LocalAccuracyRow[]> {
  const rows: LocalAccuracyRow[] = [];
  let run = 0;
  // DynamoDB Local's JVM answers slowly until it has run for a while: a discarded run first.
  if (options.warmUpS) await runOnce(dynamoEndpoint, scaledTrace("steady", options.warmUpS, options.refillRate, 100), 100, run++, true);
  for (const name of options.traces)
    for (const lagMs of options.lagsMs) {
      run++;
      rows.push(...(await runOnce(dynamoEndpoint, scaledTrace(name, options.durationS, options.refillRate, lagMs), lagMs, run)));
    }
  return rows;
}
