/** Lambda entry point of `GET /status/{key}`. */
import { readEnv, storeFor, topologyFor } from "../adapters/env.js";
import { powertoolsTelemetry } from "../adapters/powertools.js";
import { systemClock } from "../adapters/system-clock.js";
import { makeStatusHandler } from "../handlers/status.js";

const env = readEnv();
export const handler = powertoolsTelemetry("status", env.region).wrap(
  makeStatusHandler({
    store: storeFor(env),
    clock: systemClock,
    topology: topologyFor(env),
    degradedAfterMs: Number(process.env.TOKENBANK_DEGRADED_AFTER_MS ?? 180_000),
  }),
);
