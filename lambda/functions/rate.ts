/** Lambda entry point of `POST /rate`: real dependencies built once per instance. */

import { readEnv, storeFor, topologyFor } from "../adapters/env.js";
import { LambdaPeerTransfer } from "../adapters/lambda-peer-transfer.js";
import { powertoolsTelemetry } from "../adapters/powertools.js";
import { systemClock } from "../adapters/system-clock.js";
import { Limiter } from "../app/limiter.js";
import { makeRateHandler } from "../handlers/rate.js";

const env = readEnv();
const obs = powertoolsTelemetry("rate", env.region);
export const handler = obs.wrap(
  makeRateHandler({
    telemetry: obs.telemetry,
    limiter: new Limiter({
      store: storeFor(env),
      clock: systemClock,
      rules: env.rules,
      topology: topologyFor(env),
      leaseMs: env.leaseMs,
      // TOKENBANK_BORROW=off turns direct borrowing off (replication-driven rebalancing remains).
      ...(process.env.TOKENBANK_BORROW === "off" ? {} : { borrow: { transfer: new LambdaPeerTransfer(), budgetMs: 150 } }),
    }),
    region: env.region,
  }),
);
