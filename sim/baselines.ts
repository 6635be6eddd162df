/**
 * The designs most articles propose, modelled with the simulator's arrivals and replication lag,
 * to compare with tokenbank on the same demand traces:
 * - `lww`: one shared bucket item per key, replicated last-writer-wins: each region decides on
 *   its replica's copy and writes the whole item back.
 * - `gcounter`: a bucket per region refilling at the full rate, debited by its own takes at once
 *   and by peers' takes when their consumption counters replicate (a G-counter).
 * (The static split is tokenbank's own code with rebalancing and borrow off.)
 */
import { type Admission, worstOverAdmission } from "../lambda/core/accuracy.js";
import { TOKEN } from "../lambda/core/units.js";
import { rng, timeline } from "./engine.js";
import type { Scenario } from "./scenario.js";

/** What a baseline run measured (the same fields as the simulator's). */
export interface BaselineResult {
  readonly strategy: string;
  readonly ideal: number;
  readonly admitted: number;
  readonly utilisation: number;
  readonly worstOverAdmission: number;
  readonly timeline: { readonly admitted: number[]; readonly ideal: number[] };
}

/** Uniform arrivals (seconds) per region from the scenario's piecewise-constant demand. */
export function arrivals(sc: Scenario): { t: number; region: number }[] {
  const out: { t: number; region: number }[] = [];
  sc.regions.forEach((name, region) => {
    const segs = [...(sc.demand[name] ?? [])].sort((a, b) => a.fromS - b.fromS);
    segs.forEach((seg, i) => {
      const end = Math.min(segs[i + 1]?.fromS ?? sc.durationS, sc.durationS);
      if (seg.rate <= 0) return;
      for (let t = seg.fromS; t < end; t += 1 / seg.rate) out.push({ t, region });
    });
  });
  return out.sort((a, b) => a.t - b.t || a.region - b.region);
}

/** The ideal central bucket facing the same arrivals. */
export function idealTimes(sc: Scenario, times: readonly number[]): bigint[] {
  let level = sc.capacity;
  let last = 0;
  const out: bigint[] = [];
  for (const t of times) {
    level = Math.min(sc.capacity, level + (t - last) * sc.refillRate);
    last = t;
    if (level >= 1 - 1e-9) {
      level -= 1;
      out.push(BigInt(Math.round(t * 1e6)));
    }
  }
  return out;
}

/** Runs one baseline on a scenario with the given lag (ms). */
export function simulateBaseline(sc: Scenario, strategy: "lww" | "gcounter", lagMs: number): BaselineResult {
  const random = rng(sc.seed);
  const R = sc.regions.length;
  const events = arrivals(sc);
  const lag = () => (lagMs / 1000) * (1 + sc.jitter * (2 * random() - 1));
  const cut = (r: number, t: number) => sc.partitions.some((p) => p.region === sc.regions[r] && t >= p.fromS && t < p.toS);
  // Deliveries pending: [due, apply].
  const pending: { due: number; apply: () => void }[] = [];
  const deliverUntil = (t: number) => {
    pending.sort((a, b) => a.due - b.due);
    while (pending.length > 0 && (pending[0] as { due: number }).due <= t) (pending.shift() as { apply: () => void }).apply();
  };
  /** Replicates a write made in `from` at `t` to every other region: after the lag, held while cut. */
  const ship = (from: number, t: number, apply: (to: number, due: number) => void) => {
    for (let j = 0; j < R; j++) {
      if (j === from) continue;
      const lagged = t + lag();
      const due = cut(from, t) || cut(j, lagged) ? Math.max(lagged, ...sc.partitions.map((p) => p.toS)) : lagged;
      pending.push({ due, apply: () => apply(j, due) });
    }
  };
  const admissions: Admission[] = [];
  const admit = (t: number) => admissions.push({ atUs: BigInt(Math.round(t * 1e6)), amount: TOKEN });

  if (strategy === "lww") {
    const replicas = sc.regions.map(() => ({ level: sc.capacity, ts: 0, stamp: [0, -1] as [number, number] }));
    for (const { t, region } of events) {
      deliverUntil(t);
      const rep = replicas[region] as (typeof replicas)[number];
      const level = Math.min(sc.capacity, rep.level + (t - rep.ts) * sc.refillRate);
      if (level < 1) continue;
      admit(t);
      const next = { level: level - 1, ts: t, stamp: [t, region] as [number, number] };
      replicas[region] = next;
      ship(region, t, (j) => {
        const cur = replicas[j] as (typeof replicas)[number];
        if (next.stamp[0] > cur.stamp[0] || (next.stamp[0] === cur.stamp[0] && next.stamp[1] > cur.stamp[1])) replicas[j] = { ...next };
      });
    }
  } else {
    const level = sc.regions.map(() => sc.capacity);
    const last = sc.regions.map(() => 0);
    const consumed = sc.regions.map(() => 0);
    const seen = sc.regions.map(() => sc.regions.map(() => 0));
    const refill = (i: number, t: number) => {
      level[i] = Math.min(sc.capacity, (level[i] as number) + (t - (last[i] as number)) * sc.refillRate);
      last[i] = t;
    };
    for (const { t, region } of events) {
      deliverUntil(t);
      refill(region, t);
      if ((level[region] as number) < 1) continue;
      admit(t);
      level[region] = (level[region] as number) - 1;
      consumed[region] = (consumed[region] as number) + 1;
      const counter = consumed[region] as number;
      ship(region, t, (j, due) => {
        const delta = counter - ((seen[j] as number[])[region] as number);
        if (delta <= 0) return;
        (seen[j] as number[])[region] = counter;
        refill(j, due);
        level[j] = (level[j] as number) - delta;
      });
    }
  }
  const idealAt = idealTimes(
    sc,
    events.map((e) => e.t),
  );
  const ideal = idealAt.length;
  const worst = worstOverAdmission(admissions, BigInt(sc.capacity) * TOKEN, BigInt(Math.round(sc.refillRate * 1e6)) * 1_000_000n);
  return {
    strategy,
    ideal,
    admitted: admissions.length,
    utilisation: ideal === 0 ? 1 : admissions.length / ideal,
    worstOverAdmission: Number(worst) / 1e18,
    timeline: timeline(
      admissions.map((a) => a.atUs),
      idealAt,
      sc.durationS,
    ),
  };
}
