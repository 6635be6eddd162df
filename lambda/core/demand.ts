/**
 * Demand estimates from monotone request counters: an exponentially weighted rate, decayed
 * to "now" when read (so a silent region's estimate falls: a lower bound).
 * Only the policy uses demand; safety never depends on it.
 */

/** An estimate of one region's demand for one bucket. */
export interface DemandEstimate {
  /** The counter (aT requested, monotone) at the last observation. */
  readonly count: bigint;
  /** When it was observed, µs, on the observed region's clock. */
  readonly atUs: bigint;
  /** Smoothed rate at that instant, tokens/s. */
  readonly rate: number;
}

const TOKEN = 1e18;

/**
 * Folds in a new observation of the counter. `halfLifeUs` sets the horizon (ARCHITECTURE.md §7:
 * 0.05–0.25 s follows quickly). Observations out of order or without progress in time are ignored.
 */
export function observeDemand(prev: DemandEstimate | undefined, count: bigint, atUs: bigint, halfLifeUs: number): DemandEstimate {
  if (!prev) return { count, atUs, rate: 0 };
  if (atUs <= prev.atUs || count < prev.count) return prev;
  const dtUs = Number(atUs - prev.atUs);
  const instant = (Number(count - prev.count) / TOKEN) * (1e6 / dtUs);
  const keep = 2 ** (-dtUs / halfLifeUs);
  return { count, atUs, rate: keep * prev.rate + (1 - keep) * instant };
}

/** The estimate decayed to `nowUs` (no newer observation means no evidence of demand). */
export function demandAt(e: DemandEstimate | undefined, nowUs: bigint, halfLifeUs: number): number {
  if (!e) return 0;
  const dtUs = Number(nowUs - e.atUs);
  return dtUs <= 0 ? e.rate : e.rate * 2 ** (-dtUs / halfLifeUs);
}
