import { describe, expect, it } from "vitest";
import { forecastFloor, holt, holtForecast } from "../../../lambda/core/forecast.js";

describe("forecasts", () => {
  it("a forecast floors its region's demand from from − lead until until", () => {
    const f = [{ key: "k", region: "eu", expectedRate: 80, fromMs: 10_000, untilMs: 20_000, source: "event" as const }];
    expect(forecastFloor(f, "eu", 7_000, 2_000)).toBe(0);
    expect(forecastFloor(f, "eu", 8_500, 2_000)).toBe(80);
    expect(forecastFloor(f, "us", 15_000, 2_000)).toBe(0);
    expect(forecastFloor(f, "eu", 20_001, 2_000)).toBe(0);
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
