/**
 * Forecast-driven scaling.
 *
 * - `handleForecastEvent`: an EventBridge event `detail-type: "tokenbank.forecast"`,
 *   `detail: { key, region?, expectedRate, from, until }` becomes a replicated forecast row; every
 *   region's rebalancer then treats it as a floor on that region's demand from shortly before
 *   `from` until `until`, so donors move share there ahead of the spike.
 * - `runForecaster` (scheduled): Holt's linear trend over each of this region's buckets'
 *   observed demand writes built-in forecasts for ramps it sees coming; buckets that opted in
 *   (`predictive: true` with a `minRefillRate` bound) get their refill lowered to that bound during
 *   a forecast surge (predictive throttling, the home region writes the change) and restored after;
 *   and buckets whose forecast window opens are re-planned at once.
 */
import * as z from "zod/mini";
import { ValidationError } from "../core/errors.js";
import { type Forecast, forecastFloor, type HoltState, holt, holtForecast } from "../core/forecast.js";
import { assertValidKey } from "../core/keys.js";
import { formatIssue } from "../core/rules.js";
import { TOKEN } from "../core/units.js";
import type { BucketStore } from "../ports/bucket-store.js";
import type { Clock } from "../ports/clock.js";
import { silentTelemetry, type Telemetry } from "../ports/telemetry.js";
import { BucketAdmin } from "./buckets.js";
import type { Merger } from "./merger.js";
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
export async function handleForecastEvent(deps: ForecastDeps, event: { "detail-type"?: string; detail?: unknown }): Promise<Forecast> {
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
  (deps.telemetry ?? silentTelemetry).log("info", "forecast accepted", { ...forecast });
  return forecast;
}

/** What one forecaster run did. */
export interface ForecasterRun {
  readonly forecasts: Forecast[];
  readonly throttled: string[];
  readonly restored: string[];
  readonly replanned: string[];
}

/** Memory of the forecaster between runs (Holt's state and the last counters seen). */
export type ForecasterMemory = Map<string, { requested: bigint; atMs: number; holt?: HoltState | undefined }>;

/** One scheduled run. */
export async function runForecaster(
  deps: ForecastDeps,
  memory: ForecasterMemory,
  options: { periodMs?: number; leadMs?: number; rampFactor?: number } = {},
): Promise<ForecasterRun> {
  const { store, clock, topology } = deps;
  const periodMs = options.periodMs ?? 60_000;
  const leadMs = options.leadMs ?? 3000;
  const nowMs = Number(clock.nowUs() / 1000n);
  const out: ForecasterRun = { forecasts: [], throttled: [], restored: [], replanned: [] };
  const { slices, configs } = await store.scanAll();

  // Built-in forecasts: Holt over each of our buckets' observed demand.
  for (const own of slices.filter((s) => s.region === topology.self)) {
    const seen = memory.get(own.key);
    if (seen && nowMs > seen.atMs) {
      const rate = (Number(own.requested - seen.requested) / Number(TOKEN)) * (1000 / (nowMs - seen.atMs));
      const h = holt(seen.holt, rate, nowMs);
      const ahead = holtForecast(h, 2 * periodMs);
      memory.set(own.key, { requested: own.requested, atMs: nowMs, holt: h });
      if (seen.holt && ahead > (options.rampFactor ?? 1.1) * Math.max(rate, h.level, 1e-9) && ahead > own.limits.refillRate * 0.1) {
        const f: Forecast = {
          key: own.key,
          region: topology.self,
          expectedRate: ahead,
          fromMs: nowMs,
          untilMs: nowMs + 2 * periodMs,
          source: "builtin",
        };
        await store.putForecast(f);
        deps.merger?.noteForecast(f);
        out.forecasts.push(f);
      }
    } else {
      memory.set(own.key, { requested: own.requested, atMs: nowMs });
    }
  }

  // Predictive throttling (home region only) and re-planning of buckets whose window is open.
  const admin = new BucketAdmin({ store, clock, topology });
  for (const key of new Set(slices.map((s) => s.key))) {
    const forecasts = await store.forecasts(key);
    const open = forecasts.filter((f) => nowMs >= f.fromMs - leadMs && nowMs <= f.untilMs);
    if (open.length > 0 && deps.merger) {
      for (const f of forecasts) deps.merger.noteForecast(f);
      await deps.merger.rebalanceNow(key);
      out.replanned.push(key);
    }
    const config = configs.find((c) => c.key === key);
    if (topology.self !== topology.regions[0] || !config?.predictive || config.bounds?.minRefillRate === undefined) continue;
    const surge = topology.regions.some((r) => forecastFloor(open, r, nowMs, leadMs) > config.limits.refillRate);
    const history = await store.history(key);
    const throttle = [...history].reverse().find((h) => h.by === "forecaster:throttle");
    const restoredAfter = throttle ? history.some((h) => h.by === "forecaster:restore" && h.version > throttle.version) : true;
    if (surge && config.limits.refillRate > config.bounds.minRefillRate) {
      await admin.patch(key, { refillRate: config.bounds.minRefillRate, inherit: "as-is" }, "forecaster:throttle");
      out.throttled.push(key);
    } else if (!surge && throttle && !restoredAfter && throttle.old) {
      await admin.patch(key, { refillRate: throttle.old.refillRate, inherit: "as-is" }, "forecaster:restore");
      out.restored.push(key);
    }
  }
  return out;
}
