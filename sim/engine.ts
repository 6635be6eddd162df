/**
 * The multi-region simulator: the product's own `Limiter` and `Merger` (and so the same core)
 * over in-memory stores, in deterministic virtual time. Replication (lag, jitter, in order per
 * link, newest image per item), partitions, clock skew and inter-region borrow calls are
 * modelled; the ideal is one exact central bucket facing the same arrivals.
 */
import { setImmediate as tick } from "node:timers/promises";
import { MemoryBucketStore } from "../lambda/adapters/memory/store.js";
import { Limiter } from "../lambda/app/limiter.js";
import { Merger } from "../lambda/app/merger.js";
import { makeSlice } from "../lambda/app/new-row.js";
import type { Topology } from "../lambda/app/topology.js";
import { type Admission, worstOverAdmission } from "../lambda/core/accuracy.js";
import { toSliceParams } from "../lambda/core/limits.js";
import { parseRules } from "../lambda/core/rules.js";
import { applyTake, newSlice, planTake, type SliceState } from "../lambda/core/slice.js";
import { TOKEN } from "../lambda/core/units.js";
import type { StoredSlice } from "../lambda/ports/bucket-store.js";
import type { Clock } from "../lambda/ports/clock.js";
import type { BorrowAnswer, BorrowRequest, Offer, PeerTransfer } from "../lambda/ports/peer-transfer.js";
import type { Scenario } from "./scenario.js";

/** What one run measured. */
export interface SimResult {
  readonly scenario: string;
  readonly borrow: boolean;
  readonly requests: number;
  readonly ideal: number;
  readonly admitted: number;
  /** admitted / ideal (0–1). */
  readonly utilisation: number;
  /** Tokens (may be fractional): max over windows of admitted − (C + r·(b − a)); ≤ 0 means never over. */
  readonly worstOverAdmission: number;
  /** After `shift`, until every 1-s window in the region holds ≥ 0.9·r (ms); null without a shift or if never. */
  readonly timeToFollowMs: number | null;
  readonly perRegion: Record<string, number>;
  readonly merges: number;
  readonly gives: number;
  readonly borrows: number;
  readonly lends: number;
  /** Donor gives collected by their receivers after an offer (ahead of replication). */
  readonly collects: number;
  /** Admitted and ideal counts per 10-s window, for charts. */
  readonly timeline: { readonly admitted: number[]; readonly ideal: number[] };
  /** Within the scenario's `measure` window: ideal, admitted, utilisation (null without a window). */
  readonly window: { readonly ideal: number; readonly admitted: number; readonly utilisation: number } | null;
  /**
   * A bucket without refill: borrow round trips (`rttMs`) from the first denial to the last
   * admission, i.e. how long the last free token took to reach demand (null with refill, or
   * without a denial).
   */
  readonly roundTripsToLastToken: number | null;
}

const T0 = 1_700_000_000_000_000n; // virtual epoch, µs

/** A seeded PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Virtual time: an event queue (binary heap by time, then insertion order). */
class VirtualTime {
  now = 0n;
  private seq = 0;
  private readonly heap: { t: bigint; s: number; fn: () => void }[] = [];

  at(t: bigint, fn: () => void): void {
    const h = this.heap;
    h.push({ t, s: this.seq++, fn });
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.less(h[p] as never, h[i] as never)) break;
      [h[p], h[i]] = [h[i] as never, h[p] as never];
      i = p;
    }
  }

  private less(a: { t: bigint; s: number }, b: { t: bigint; s: number }): boolean {
    return a.t < b.t || (a.t === b.t && a.s < b.s);
  }

  pop(): { t: bigint; fn: () => void } | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l] as never, h[m] as never)) m = l;
        if (r < h.length && this.less(h[r] as never, h[m] as never)) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i] as never, h[m] as never];
        i = m;
      }
    }
    return top;
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.at(this.now + BigInt(Math.round(ms * 1000)), resolve));
  }
}

const us = (s: number) => BigInt(Math.round(s * 1e6));

/** Demand rate (requests/s) of a region at virtual second `t`, and when it next changes. */
function rateAt(segments: readonly { fromS: number; rate: number }[], t: number): { rate: number; nextS: number } {
  const sorted = [...segments].sort((a, b) => a.fromS - b.fromS);
  let rate = 0;
  let nextS = Number.POSITIVE_INFINITY;
  for (const s of sorted) {
    if (s.fromS <= t) rate = s.rate;
    else {
      nextS = s.fromS;
      break;
    }
  }
  return { rate, nextS };
}

/** Runs one scenario. */
export async function simulate(sc: Scenario, options: { borrow: boolean; forecasts?: boolean; rebalance?: boolean }): Promise<SimResult> {
  const useForecasts = options.forecasts !== false;
  const leadMs = 3000;
  const vt = new VirtualTime();
  const random = rng(sc.seed);
  const end = us(sc.durationS);
  const key = "sim";
  const rules = parseRules({ rules: [{ name: "sim", key: "{{ .Key }}", capacity: sc.capacity, refillRate: sc.refillRate }] }, "scenario");
  const limits = { capacity: sc.capacity, refillRate: sc.refillRate, onError: "deny" as const };
  const cut = (region: string, t: bigint) => sc.partitions.some((p) => p.region === region && t >= us(p.fromS) && t < us(p.toS));

  interface Region {
    name: string;
    store: MemoryBucketStore;
    limiter: Limiter;
    merger: Merger;
    clock: Clock;
  }
  const regions = new Map<string, Region>();
  let borrows = 0;
  const transfer = (self: string): PeerTransfer => ({
    borrow: (peer: string, request: BorrowRequest): Promise<BorrowAnswer> => {
      borrows++;
      return new Promise((resolve) => {
        const half = us(sc.rttMs / 2000);
        // A call that cannot get through is a timeout: "denied for now".
        if (cut(self, vt.now) || cut(peer, vt.now)) return vt.at(vt.now + 2n * half, () => resolve({ ok: false, reason: "unreachable" }));
        vt.at(vt.now + half, () => {
          void (regions.get(peer) as Region).merger.lend(request).then((answer) => vt.at(vt.now + half, () => resolve(answer)));
        });
      });
    },
    // An offer reaches the receiver half a round trip later, which then collects (one more round trip).
    offer: async (peer: string, offer: Offer): Promise<void> => {
      if (cut(self, vt.now) || cut(peer, vt.now)) throw new Error("unreachable");
      vt.at(vt.now + us(sc.rttMs / 2000), () => void (regions.get(peer) as Region).merger.collect(offer));
    },
  });

  for (const name of sc.regions) {
    const skew = us((sc.skewMs[name] ?? 0) / 1000);
    const clock: Clock = { nowUs: () => T0 + vt.now + skew, sleep: (ms) => vt.sleep(ms) };
    const topology: Topology = { self: name, regions: sc.regions };
    const store = new MemoryBucketStore(name);
    const limiter = new Limiter({
      store,
      clock,
      rules,
      topology,
      ...(options.borrow ? { borrow: { transfer: transfer(name) } } : {}),
    });
    const merger = new Merger({
      store,
      clock,
      topology,
      forecastLeadMs: leadMs,
      rebalance: options.rebalance !== false,
      ...(options.borrow ? { transfer: transfer(name) } : {}),
    });
    regions.set(name, { name, store, limiter, merger, clock });
  }

  // Replication: newest image per item and link, in order, after lag ± jitter; held while cut.
  const lastDue = new Map<string, bigint>();
  const pending = new Map<string, StoredSlice>();
  let seq = 0;
  const ship = (from: string, to: string) => {
    const link = `${from}>${to}`;
    const delay = sc.lagMs * (1 + sc.jitter * (2 * random() - 1));
    const due = [vt.now + us(delay / 1000), lastDue.get(link) ?? 0n].reduce((a, b) => (a > b ? a : b));
    lastDue.set(link, due);
    const deliver = () => {
      if (cut(from, vt.now) || cut(to, vt.now)) {
        const heal = sc.partitions.filter((p) => (p.region === from || p.region === to) && vt.now < us(p.toS)).map((p) => us(p.toS));
        vt.at(
          heal.reduce((a, b) => (a > b ? a : b), vt.now + 1000n),
          deliver,
        );
        return;
      }
      const row = pending.get(link);
      pending.delete(link);
      if (!row) return;
      const target = regions.get(to) as Region;
      target.store.putReplica(row);
      void target.merger.apply([{ id: String(seq++), kind: "slice", slice: row }]);
    };
    vt.at(due, deliver);
  };
  for (const region of regions.values()) {
    region.store.onOwnWrite = (row) => {
      for (const peer of sc.regions) {
        if (peer === region.name) continue;
        const link = `${region.name}>${peer}`;
        const waiting = pending.has(link);
        pending.set(link, row);
        if (!waiting) ship(region.name, peer);
      }
    };
  }

  // Arrivals, decisions, and the ideal central bucket facing the same arrivals in true time.
  const admissions: Admission[] = [];
  const perRegion: Record<string, number> = Object.fromEntries(sc.regions.map((r) => [r, 0]));
  const byRegion = new Map<string, bigint[]>(sc.regions.map((r) => [r, []]));
  let ideal: SliceState = newSlice(toSliceParams(limits), 0n);
  let idealAdmitted = 0;
  const idealTimes: bigint[] = [];
  let requests = 0;
  let firstDeniedUs: bigint | undefined;
  const arrive = (name: string) => {
    const t = Number(vt.now) / 1e6;
    const { rate, nextS } = rateAt(sc.demand[name] ?? [], t);
    if (rate > 0) {
      requests++;
      const next = applyTake(ideal, planTake(ideal, TOKEN, vt.now));
      if (next) {
        ideal = next;
        idealAdmitted++;
        idealTimes.push(vt.now);
      }
      const region = regions.get(name) as Region;
      void region.limiter.rate({ key, tokens: 1, headers: {} }).then((d) => {
        if (!d.allowed) firstDeniedUs ??= vt.now;
        if (d.allowed) {
          admissions.push({ atUs: vt.now, amount: TOKEN });
          (byRegion.get(name) as bigint[]).push(vt.now);
          perRegion[name] = (perRegion[name] ?? 0) + 1;
        }
      });
      const gap = sc.arrivals === "poisson" ? -Math.log(1 - random()) / rate : 1 / rate;
      const nextT = Math.min(t + gap, nextS);
      if (nextT < sc.durationS) vt.at(us(nextT), () => arrive(name));
    } else if (nextS < sc.durationS) {
      vt.at(us(nextS), () => arrive(name));
    }
  };
  // Every region creates its row at t = 0 (as each does when the config reaches it); creation replicates.
  for (const region of regions.values()) {
    const topology: Topology = { self: region.name, regions: sc.regions };
    await region.store.createSlice(makeSlice(key, topology, limits, { kind: "rule", rule: "sim" }, region.clock.nowUs()));
  }
  for (const name of sc.regions) vt.at(0n, () => arrive(name));

  // Forecasts: the event reaches every region at atS (a replicated row in the product); the
  // scheduled forecaster re-plans when the window opens (from − lead).
  if (useForecasts) {
    for (const f of sc.forecasts) {
      const forecast = {
        key,
        region: f.region,
        expectedRate: f.expectedRate,
        fromMs: Number(T0 / 1000n) + f.fromS * 1000,
        untilMs: Number(T0 / 1000n) + f.untilS * 1000,
        source: "event" as const,
      };
      vt.at(us(f.atS), () => {
        for (const r of regions.values()) r.merger.noteForecast(forecast);
      });
      for (let t = Math.max(f.atS, f.fromS - leadMs / 1000); t <= f.untilS; t += 1) {
        vt.at(us(t), () => {
          for (const r of regions.values()) void r.merger.rebalanceNow(key);
        });
      }
    }
  }

  for (let ev = vt.pop(); ev && ev.t <= end; ev = vt.pop()) {
    vt.now = ev.t;
    ev.fn();
    await tick(); // let every promise chain the event started run to completion (the stores are instant)
  }

  admissions.sort((a, b) => (a.atUs < b.atUs ? -1 : a.atUs > b.atUs ? 1 : 0));
  const ratePerUs = BigInt(Math.round(sc.refillRate * 1e6)) * 1_000_000n;
  const worst = worstOverAdmission(admissions, BigInt(sc.capacity) * TOKEN, ratePerUs);
  const stats = [...regions.values()].map((r) => r.merger.stats);
  return {
    scenario: sc.name,
    borrow: options.borrow,
    requests,
    ideal: idealAdmitted,
    admitted: admissions.length,
    utilisation: idealAdmitted === 0 ? 1 : admissions.length / idealAdmitted,
    worstOverAdmission: Number(worst) / 1e18,
    timeToFollowMs: sc.shift ? timeToFollow(byRegion.get(sc.shift.region) ?? [], us(sc.shift.atS), end, sc.refillRate) : null,
    perRegion,
    merges: stats.reduce((a, s) => a + s.merges, 0),
    gives: stats.reduce((a, s) => a + s.gives, 0),
    borrows,
    lends: stats.reduce((a, s) => a + s.lends, 0),
    collects: stats.reduce((a, s) => a + s.collects, 0),
    timeline: timeline(
      admissions.map((a) => a.atUs),
      idealTimes,
      sc.durationS,
    ),
    window: sc.measure ? measureWindow(admissions, idealTimes, us(sc.measure.fromS), us(sc.measure.toS)) : null,
    roundTripsToLastToken: roundTrips(sc, firstDeniedUs, admissions.at(-1)?.atUs),
  };
}

/** Round trips from the first denial to the last admission, for a bucket without refill. */
function roundTrips(sc: Scenario, firstDeniedUs: bigint | undefined, lastAdmittedUs: bigint | undefined): number | null {
  if (sc.refillRate !== 0 || firstDeniedUs === undefined || lastAdmittedUs === undefined || sc.rttMs === 0) return null;
  return Math.max(0, Number(lastAdmittedUs - firstDeniedUs) / 1000 / sc.rttMs);
}

/** Counts per 10-s window. */
export function timeline(admitted: readonly bigint[], ideal: readonly bigint[], durationS: number) {
  const n = Math.ceil(durationS / 10);
  const count = (xs: readonly bigint[]) => {
    const out = new Array<number>(n).fill(0);
    for (const t of xs) {
      const i = Math.min(n - 1, Number(t / 10_000_000n));
      out[i] = (out[i] ?? 0) + 1;
    }
    return out;
  };
  return { admitted: count(admitted), ideal: count(ideal) };
}

function measureWindow(admissions: readonly Admission[], idealTimes: readonly bigint[], from: bigint, to: bigint) {
  const admitted = admissions.filter((a) => a.atUs >= from && a.atUs < to).length;
  const ideal = idealTimes.filter((t) => t >= from && t < to).length;
  return { ideal, admitted, utilisation: ideal === 0 ? 1 : admitted / ideal };
}

/**
 * Time to follow (ARCHITECTURE.md §7, forward windows): the earliest `t* ≥ T` such that every
 * 1-s window starting in `[t*, end − 1 s]` holds ≥ 0.9·r admissions in the region; in ms after T.
 * Window starts are checked every millisecond.
 */
export function timeToFollow(times: readonly bigint[], atUs: bigint, endUs: bigint, refillRate: number): number | null {
  const need = 0.9 * refillRate;
  const sorted = [...times].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  let lastBad: bigint | undefined;
  let lo = 0;
  let hi = 0;
  for (let start = atUs; start + 1_000_000n <= endUs; start += 1000n) {
    while (lo < sorted.length && (sorted[lo] as bigint) < start) lo++;
    if (hi < lo) hi = lo;
    while (hi < sorted.length && (sorted[hi] as bigint) < start + 1_000_000n) hi++;
    if (hi - lo < need) lastBad = start;
  }
  if (lastBad === undefined) return 0;
  const t = lastBad + 1000n;
  return t + 1_000_000n > endUs ? null : Number(t - atUs) / 1000;
}
