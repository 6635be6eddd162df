import { describe, expect, it } from "vitest";
import { BUILTIN_SUPPORT, forecastFloor, forecastLimits, forecastSurge, holt, holtForecast } from "../../../lambda/core/forecast.js";

describe("forecasts", () => {
  it("a forecast floors its region's demand from from − lead until until", () => {
    const f = [{ key: "k", region: "eu", expectedRate: 80, fromMs: 10_000, untilMs: 20_000, source: "event" as const }];
    expect(forecastFloor(f, "eu", 7_000, 2_000)).toBe(0);
    expect(forecastFloor(f, "eu", 8_500, 2_000)).toBe(80);
    expect(forecastFloor(f, "us", 15_000, 2_000)).toBe(0);
    expect(forecastFloor(f, "eu", 20_001, 2_000)).toBe(0);
  });

  it("a built-in forecast floors demand only while observed demand supports it; an event forecast always does", () => {
    const builtin = { key: "k", region: "eu", expectedRate: 80, fromMs: 10_000, untilMs: 20_000, source: "builtin" as const };
    expect(forecastFloor([builtin], "eu", 15_000, 0)).toBe(80); // no observation given: as before
    expect(forecastFloor([builtin], "eu", 15_000, 0, BUILTIN_SUPPORT * 80)).toBe(80);
    expect(forecastFloor([builtin], "eu", 15_000, 0, BUILTIN_SUPPORT * 80 - 0.5)).toBe(0); // the burst it saw has ended
    const event = { ...builtin, source: "event" as const, expectedRate: 50 };
    expect(forecastFloor([builtin, event], "eu", 15_000, 0, 0)).toBe(50); // announced demand not started yet
  });

  it("Holt's linear trend follows a ramp and predicts ahead of it", () => {
    let s = holt(undefined, 0, 0);
    for (let t = 1; t <= 10; t++) s = holt(s, 10 * t, t * 1000); // +10 req/s every second
    expect(holtForecast(s, 0)).toBeGreaterThan(85);
    expect(holtForecast(s, 5000)).toBeGreaterThan(holtForecast(s, 0) + 30); // the trend carries on
    let flat = holt(undefined, 50, 0);
    for (let t = 1; t <= 10; t++) flat = holt(flat, 50, t * 1000);
    expect(holtForecast(flat, 5000)).toBeCloseTo(50, 5);
  });
});

describe("forecastLimits (pure)", () => {
  const configured = { capacity: 100, refillRate: 10 };
  it("grows with the surge, within the bounds, never below the configured limits", () => {
    expect(forecastLimits(configured, { maxCapacity: 400, maxRefillRate: 30 }, { growth: true }, 20)).toEqual({
      capacity: 200,
      refillRate: 20,
    });
    expect(forecastLimits(configured, { maxCapacity: 400, maxRefillRate: 30 }, { growth: true }, 1000)).toEqual({
      capacity: 400,
      refillRate: 30,
    });
    expect(forecastLimits(configured, { maxCapacity: 400 }, { growth: true }, 1000)).toEqual({ capacity: 400, refillRate: 10 });
    expect(forecastLimits({ capacity: 5, refillRate: 0 }, { maxCapacity: 50 }, { growth: true }, 3)).toEqual({
      capacity: 50,
      refillRate: 0,
    });
  });
  it("no surge (at or under the refill), or no opt-in: the configured limits", () => {
    expect(forecastLimits(configured, { maxCapacity: 400 }, { growth: true }, 10)).toBe(configured);
    expect(forecastLimits(configured, { maxCapacity: 400 }, {}, 50)).toBe(configured);
  });
  it("predictive throttling lowers the refill to its bound", () => {
    expect(forecastLimits(configured, { minRefillRate: 2 }, { predictive: true }, 50)).toEqual({ capacity: 100, refillRate: 2 });
  });
  it("a surge is the sum of every region's open forecast", () => {
    const f = (region: string, rate: number) => ({
      key: "k",
      region,
      expectedRate: rate,
      fromMs: 1000,
      untilMs: 2000,
      source: "event" as const,
    });
    expect(forecastSurge([f("a", 5), f("b", 7), f("b", 3)], ["a", "b"], 1500, 0)).toBe(12);
    expect(forecastSurge([f("a", 5)], ["a", "b"], 500, 0)).toBe(0);
    expect(forecastSurge([f("a", 5)], ["a", "b"], 500, 600)).toBe(5);
  });
});
