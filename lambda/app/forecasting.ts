/**
 * Forecast-driven scaling.
 *
 * - `handleForecastEvent`: an EventBridge event `detail-type: "tokenbank.forecast"`,
 *   `detail: { key, region?, expectedRate, from, until }` becomes a replicated forecast row; every
 *   region's rebalancer then treats it as a floor on that region's demand from shortly before
 *   `from` until `until`, so donors move share there ahead of the spike.
 * - `runForecaster` (scheduled): Holt's linear trend over each of this region's buckets'
 *   observed demand writes built-in forecasts for ramps it sees coming; buckets that opted in get
 *   their limits changed for a forecast surge and restored after (`scaleForForecasts`: grown up to
 *   `maxCapacity`/`maxRefillRate` with `forecastGrowth`, or the refill lowered to `minRefillRate`
 *   with `predictive`; the home region writes the change); and buckets whose forecast window
 *   opens are re-planned at once.
 */
import * as z from "zod/mini";
import { ConflictError, ValidationError } from "../core/errors.js";
import { type Forecast, forecastLimits, forecastSurge, type HoltState, holt, holtForecast, type ScaledLimits } from "../core/forecast.js";
import { assertValidKey } from "../core/keys.js";
import { formatIssue } from "../core/rules.js";
import { TOKEN } from "../core/units.js";
import type { BucketConfig, BucketStore, HistoryEntry, StoredSlice } from "../ports/bucket-store.js";
import type { Clock } from "../ports/clock.js";
import { silentTelemetry, type Telemetry } from "../ports/telemetry.js";
import { BucketAdmin } from "./buckets.js";
import type { Merger } from "./merger.js";
import { forEachBucket } from "./paged.js";
import type { Topology } from "./topology.js";

/** The forecast event's detail. `from`/`until`: ISO 8601 or ms since the epoch. */
export const forecastDetail = z.strictObject({
  key: z.string(),
  region: z.optional(z.string()),
  expectedRate: z.number().check(z.minimum(0, { error: "must be ≥ 0" })),
  from: z.union([z.string(), z.number()]),
  until: z.union([z.string(), z.number()]),
});

const time = (v: string | number, field: string): number => {
  const ms = typeof v === "number" ? v : Date.parse(v);
  if (!Number.isFinite(ms))
    throw new ValidationError("event.invalid_forecast", `${field}: "${v}" is not a time (ISO 8601 or ms since the epoch)`);
  return ms;
};

/** Dependencies of the forecasting use cases. */
export interface ForecastDeps {
  readonly store: BucketStore;
  readonly clock: Clock;
  readonly topology: Topology;
  /** This region's merger, to re-plan at once (the stream would also deliver the forecast). */
  readonly merger?: Merger | undefined;
  readonly telemetry?: Telemetry;
}

/**
 * Accepts one EventBridge event. @throws {ValidationError} `event.invalid_forecast` for a bad
 * detail, an unknown region or a window that ends before it starts.
 */
export async function handleForecastEvent(
  deps: ForecastDeps,
  event: { "detail-type"?: string; detail?: unknown },
  options: { periodMs?: number; leadMs?: number } = {},
): Promise<Forecast> {
  if (event["detail-type"] !== "tokenbank.forecast") {
    throw new ValidationError("event.invalid_forecast", `detail-type must be "tokenbank.forecast" (got "${event["detail-type"]}")`);
  }
  const parsed = forecastDetail.safeParse(event.detail);
  if (!parsed.success) throw new ValidationError("event.invalid_forecast", `detail.${formatIssue(parsed.error.issues[0], "")}`);
  const d = parsed.data;
  assertValidKey(d.key);
  const region = d.region ?? deps.topology.self;
  if (!deps.topology.regions.includes(region))
    throw new ValidationError("event.invalid_forecast", `detail.region: "${region}" is not one of ${deps.topology.regions.join(", ")}`);
  const forecast: Forecast = {
    key: d.key,
    region,
    expectedRate: d.expectedRate,
    fromMs: time(d.from, "detail.from"),
    untilMs: time(d.until, "detail.until"),
    source: "event",
  };
  if (forecast.untilMs <= forecast.fromMs) throw new ValidationError("event.invalid_forecast", "detail.until must be after detail.from");
  await deps.store.putForecast(forecast);
  if (deps.merger) {
    deps.merger.noteForecast(forecast);
    await deps.merger.rebalanceNow(forecast.key);
  }
  // A bucket that lets forecasts change its limits changes now if the window opens before the
  // next scheduled run (the schedule restores it after the window).
  const config = await deps.store.getConfig(forecast.key);
  if (config) {
    const nowMs = Number(deps.clock.nowUs() / 1000n);
    const scaleLeadMs = (options.periodMs ?? 60_000) + (options.leadMs ?? 3000);
    await scaleForForecasts(deps, config, await deps.store.forecasts(forecast.key), nowMs, scaleLeadMs);
  }
  (deps.telemetry ?? silentTelemetry).log("info", "forecast accepted", { ...forecast });
  return forecast;
}

/** What one forecaster run did. */
export interface ForecasterRun {
  readonly forecasts: Forecast[];
  /** Buckets whose refill was lowered for a surge (`predictive`). */
  readonly throttled: string[];
  /** Buckets grown for a surge (`forecastGrowth`). */
  readonly grown: string[];
  /** Buckets given back their configured limits. */
  readonly restored: string[];
  readonly replanned: string[];
  /** True when the run reached the end of the table; false when it stopped for time (the next run resumes). */
  readonly complete: boolean;
  /** Buckets this run visited. */
  readonly visited: number;
}

/**
 * Memory of the forecaster between runs: the last counters seen, Holt's state, the last rate
 * and whether it had risen from the one before.
 */
export type ForecasterMemory = Map<
  string,
  { requested: bigint; atMs: number; holt?: HoltState | undefined; rate?: number | undefined; rising?: boolean | undefined }
>;

/** Options of one scheduled run. */
export interface ForecasterOptions {
  /** The schedule's period, ms. @default 60000 */
  readonly periodMs?: number;
  /** A forecast floors demand from this long before its start, ms. @default 3000 */
  readonly leadMs?: number;
  /** Holt's forecast must exceed the current rate by this factor to count as a ramp. @default 1.1 */
  readonly rampFactor?: number;
  /** Stop fetching pages after this long and resume there next run, ms. @default 40000 (the function times out at 60 s) */
  readonly budgetMs?: number;
  /** Buckets handled at once. @default 8 */
  readonly concurrency?: number;
  /** Items per scan page. @default 1000 */
  readonly pageSize?: number;
}

/**
 * One scheduled run: a budgeted, resumable pass over every bucket (`forEachBucket`), using the
 * forecasts the scan itself returns (no query per bucket); a bucket costs calls only when it
 * needs something: a built-in forecast to write, an open window to re-plan, or forecast scaling
 * to apply or undo (home region).
 */
export async function runForecaster(deps: ForecastDeps, memory: ForecasterMemory, options: ForecasterOptions = {}): Promise<ForecasterRun> {
  const { store, clock, topology } = deps;
  const periodMs = options.periodMs ?? 60_000;
  const leadMs = options.leadMs ?? 3000;
  const home = topology.self === topology.regions[0];
  const out: ForecasterRun = { forecasts: [], throttled: [], grown: [], restored: [], replanned: [], complete: false, visited: 0 };
  const progress = await forEachBucket(
    { store, clock },
    "forecast",
    { budgetMs: options.budgetMs ?? 40_000, concurrency: options.concurrency ?? 8, pageSize: options.pageSize ?? 1000 },
    async (bucket) => {
      const nowMs = Number(clock.nowUs() / 1000n);
      const forecasts = bucket.forecasts;
      // Built-in forecasts: Holt over this region's observed demand of the bucket.
      const own = bucket.slices.find((s) => s.region === topology.self);
      if (own) {
        const f = builtinForecast(memory, own, nowMs, periodMs, options.rampFactor ?? 1.1, topology.self);
        if (f) {
          await store.putForecast(f);
          deps.merger?.noteForecast(f);
          out.forecasts.push(f);
          forecasts.push(f);
        }
      }
      // Re-plan buckets whose window is open.
      if (deps.merger && forecasts.some((f) => nowMs >= f.fromMs - leadMs && nowMs <= f.untilMs)) {
        for (const f of forecasts) deps.merger.noteForecast(f);
        await deps.merger.rebalanceNow(bucket.key);
        out.replanned.push(bucket.key);
      }
      // Forecast scaling: the home region only, so that regions never fight over a bucket's limits.
      // The run before a window opens changes the limits, so they are in place when the surge starts.
      if (home && bucket.config) {
        const done = await scaleForForecasts(deps, bucket.config, forecasts, nowMs, periodMs + leadMs);
        if (done) out[done].push(bucket.key);
      }
    },
  );
  return { ...out, complete: progress.done, visited: progress.visited };
}

/**
 * Holt's built-in forecast for one of this region's slices, if it sees a ramp (updates `memory`).
 * A ramp is a rate that rose in two consecutive periods and that Holt's trend carries above it:
 * one burst (a single rise, then a fall) is not a ramp, and forecasting it would hold share in
 * a region its demand has already left.
 */
function builtinForecast(
  memory: ForecasterMemory,
  own: StoredSlice,
  nowMs: number,
  periodMs: number,
  rampFactor: number,
  region: string,
): Forecast | undefined {
  const seen = memory.get(own.key);
  if (!seen || nowMs <= seen.atMs) {
    memory.set(own.key, { requested: own.requested, atMs: nowMs });
    return undefined;
  }
  // (A lease refund lowers the counter by what was never handed out: never a negative rate.)
  const rate = Math.max(0, (Number(own.requested - seen.requested) / Number(TOKEN)) * (1000 / (nowMs - seen.atMs)));
  const h = holt(seen.holt, rate, nowMs);
  const ahead = holtForecast(h, 2 * periodMs);
  const rising = seen.rate !== undefined && rate > seen.rate;
  memory.set(own.key, { requested: own.requested, atMs: nowMs, holt: h, rate, rising });
  if (!rising || seen.rising !== true) return undefined;
  if (ahead <= rampFactor * Math.max(rate, h.level, 1e-9) || ahead <= own.limits.refillRate * 0.1) return undefined;
  return { key: own.key, region, expectedRate: ahead, fromMs: nowMs, untilMs: nowMs + 2 * periodMs, source: "builtin" };
}

/** Writers of forecast-driven reconfigurations, as they appear in a bucket's history. */
export const FORECAST_AUTHORS = { grow: "forecaster:grow", throttle: "forecaster:throttle", restore: "forecaster:restore" } as const;

/** Whether a forecaster's change holds the bucket's limits (grown or throttled, not yet restored). */
export function heldByForecast(config: BucketConfig): boolean {
  return config.updatedBy === FORECAST_AUTHORS.grow || config.updatedBy === FORECAST_AUTHORS.throttle;
}

/**
 * The limits the operator configured: the current ones, or, while a forecast holds the bucket
 * grown or throttled, the ones the last change by anyone else set. (Read from the change itself,
 * not from the forecaster's first change of the streak: in another region the config can
 * replicate before the history entries of the forecaster's changes do.)
 */
export function configuredLimits(config: BucketConfig, history: readonly HistoryEntry[]): ScaledLimits {
  let configured: ScaledLimits = config.limits;
  for (let i = history.length - 1; i >= 0; i--) {
    const h = history[i] as HistoryEntry;
    if (h.version > config.version) continue;
    if (h.by !== FORECAST_AUTHORS.grow && h.by !== FORECAST_AUTHORS.throttle) {
      configured = h.new;
      break;
    }
    if (h.old) configured = h.old;
  }
  return { capacity: configured.capacity, refillRate: configured.refillRate };
}

/**
 * Moves a bucket that lets forecasts change its limits (`predictive` or `forecastGrowth`) to what
 * the forecasts open at `nowMs` call for, through the versioned reconfiguration path (history
 * author `forecaster:grow`, `forecaster:throttle` or `forecaster:restore`). What it did, if anything.
 */
export async function scaleForForecasts(
  deps: ForecastDeps,
  config: BucketConfig,
  forecasts: readonly Forecast[],
  nowMs: number,
  scaleLeadMs: number,
): Promise<"grown" | "throttled" | "restored" | undefined> {
  if (!config.predictive && !config.forecastGrowth) return undefined;
  const { store, clock, topology } = deps;
  // The configured limits: the current ones, unless a forecaster holds them (only then read the history).
  const configured = heldByForecast(config) ? configuredLimits(config, await store.history(config.key)) : config.limits;
  const surge = forecastSurge(forecasts, topology.regions, nowMs, scaleLeadMs);
  const target = forecastLimits(configured, config.bounds ?? {}, { predictive: config.predictive, growth: config.forecastGrowth }, surge);
  if (target.capacity === config.limits.capacity && target.refillRate === config.limits.refillRate) return undefined;
  const restoring = target.capacity === configured.capacity && target.refillRate === configured.refillRate;
  const growing = !restoring && config.forecastGrowth === true;
  const by = restoring ? FORECAST_AUTHORS.restore : growing ? FORECAST_AUTHORS.grow : FORECAST_AUTHORS.throttle;
  try {
    // Growth adds the new room as tokens (the surge needs them); a restore or a throttle keeps what is there.
    await new BucketAdmin({ store, clock, topology }).patch(
      config.key,
      { capacity: target.capacity, refillRate: target.refillRate, inherit: growing ? "additive" : "as-is" },
      by,
    );
  } catch (error) {
    if (error instanceof ConflictError) return undefined; // changed meanwhile: the next run looks again
    throw error;
  }
  (deps.telemetry ?? silentTelemetry).log("info", "forecast scaling", { key: config.key, by, ...target });
  return restoring ? "restored" : growing ? "grown" : "throttled";
}
