/**
 * Entry point of forecasting: `tokenbank.forecast` events from the region's EventBridge bus,
 * and the scheduled built-in forecaster ("Scheduled Event").
 */
import middy from "@middy/core";
import { readEnv, storeFor, topologyFor } from "../adapters/env.js";
import { powertoolsTelemetry } from "../adapters/powertools.js";
import { systemClock } from "../adapters/system-clock.js";
import { type ForecasterMemory, handleForecastEvent, runForecaster } from "../app/forecasting.js";

const env = readEnv();
const obs = powertoolsTelemetry("forecast", env.region);
const deps = { store: storeFor(env), clock: systemClock, topology: topologyFor(env), telemetry: obs.telemetry };
const memory: ForecasterMemory = new Map();

export const handler = obs.wrap(
  middy(async (event: { "detail-type"?: string; detail?: unknown }) => {
    if (event["detail-type"] === "Scheduled Event") return runForecaster(deps, memory, { budgetMs: env.jobBudgetMs });
    return handleForecastEvent(deps, event);
  }),
);
