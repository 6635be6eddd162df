/**
 * Demand forecasts (pure).
 *
 * - A **forecast** says a region expects `expectedRate` requests/s on a bucket in
 *   `[fromMs, untilMs]`. The rebalancer treats it as a floor on that region's demand from
 *   `fromMs − leadMs` on, so donors move share there shortly before the spike.
 * - The built-in forecaster is **Holt's linear trend** (double exponential smoothing) over the
 *   demand rate observed at each scheduled run: it follows a ramp (the shape of agent traffic
 *   building up) with two parameters and O(1) state, where a seasonal model would need days of
 *   history per bucket and region that a rate limiter does not keep.
 */

/** A forecast for one bucket and region. */
export interface Forecast {
  readonly key: string;
  readonly region: string;
  /** requests (tokens) per second. */
  readonly expectedRate: number;
  readonly fromMs: number;
  readonly untilMs: number;
  readonly source: "event" | "builtin";
}

/**
 * A built-in forecast floors demand only while the region's observed demand is at least this
 * fraction of it: a ramp the forecaster extrapolated from a burst that has ended must not keep
 * share from where demand is now (an operator's event forecast always applies: it announces
 * demand that has not started yet).
 */
export const BUILTIN_SUPPORT = 0.1;

/**
 * The demand floor forecasts set for `region` at `nowMs` (0 outside every window). With
 * `demandNow` (the region's observed demand, tokens/s), a built-in forecast that observed demand
 * no longer supports ({@link BUILTIN_SUPPORT}) sets none.
 */
export function forecastFloor(forecasts: readonly Forecast[], region: string, nowMs: number, leadMs: number, demandNow?: number): number {
  let floor = 0;
  for (const f of forecasts) {
    if (f.region !== region || nowMs < f.fromMs - leadMs || nowMs > f.untilMs || f.expectedRate <= floor) continue;
    if (f.source === "builtin" && demandNow !== undefined && demandNow < BUILTIN_SUPPORT * f.expectedRate) continue;
    floor = f.expectedRate;
  }
  return floor;
}

/** Holt's state: smoothed level and trend of a rate, at a time. */
export interface HoltState {
  readonly level: number;
  readonly trend: number;
  readonly atMs: number;
}

/** Folds one observed rate into Holt's state (trend per ms). */
export function holt(prev: HoltState | undefined, rate: number, atMs: number, alpha = 0.5, beta = 0.3): HoltState {
  if (!prev || atMs <= prev.atMs) return { level: rate, trend: 0, atMs };
  const dt = atMs - prev.atMs;
  const predicted = prev.level + prev.trend * dt;
  const level = alpha * rate + (1 - alpha) * predicted;
  const trend = beta * ((level - prev.level) / dt) + (1 - beta) * prev.trend;
  return { level, trend, atMs };
}

/** The rate Holt's state predicts `aheadMs` after its last observation (never negative). */
export function holtForecast(s: HoltState, aheadMs: number): number {
  return Math.max(0, s.level + s.trend * aheadMs);
}

/** The total demand forecast for a bucket at `nowMs`: every region's floor (0 outside every window). */
export function forecastSurge(forecasts: readonly Forecast[], regions: readonly string[], nowMs: number, leadMs: number): number {
  return regions.reduce((total, r) => total + forecastFloor(forecasts, r, nowMs, leadMs), 0);
}

/** How a bucket lets forecasts change its limits. */
export interface ForecastScaling {
  /** Lower the refill to `minRefillRate` during a surge (predictive throttling, to protect what is downstream). */
  readonly predictive?: boolean | undefined;
  /** Raise the capacity and refill toward the surge, up to `maxCapacity` / `maxRefillRate` (to serve it). */
  readonly growth?: boolean | undefined;
}

/** Limits a forecast may move. */
export interface ScaledLimits {
  readonly capacity: number;
  readonly refillRate: number;
}

/**
 * The limits a bucket should have while `surge` tokens/s are forecast (0: none), given what the
 * operator configured and the bounds. Pure; the forecaster writes the difference as a versioned
 * reconfiguration and restores `configured` when the surge is over.
 *
 * - growth: refill `min(maxRefillRate, max(r, surge))`; capacity grows with the same factor,
 *   `min(maxCapacity, ⌈C·surge/r⌉)` (straight to `maxCapacity` without refill), never below `C`;
 * - predictive: refill `minRefillRate`, capacity unchanged;
 * - no surge (`surge ≤ r`), or neither: the configured limits.
 */
export function forecastLimits(
  configured: ScaledLimits,
  bounds: { maxCapacity?: number | undefined; maxRefillRate?: number | undefined; minRefillRate?: number | undefined },
  scaling: ForecastScaling,
  surge: number,
): ScaledLimits {
  if (!(surge > configured.refillRate)) return configured;
  if (scaling.growth) {
    const refillRate =
      bounds.maxRefillRate === undefined ? configured.refillRate : Math.max(configured.refillRate, Math.min(bounds.maxRefillRate, surge));
    const grown = configured.refillRate > 0 ? Math.ceil((configured.capacity * surge) / configured.refillRate) : Number.POSITIVE_INFINITY;
    const capacity =
      bounds.maxCapacity === undefined ? configured.capacity : Math.max(configured.capacity, Math.min(bounds.maxCapacity, grown));
    return { capacity, refillRate };
  }
  if (scaling.predictive && bounds.minRefillRate !== undefined && bounds.minRefillRate < configured.refillRate) {
    return { capacity: configured.capacity, refillRate: bounds.minRefillRate };
  }
  return configured;
}
