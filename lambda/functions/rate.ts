/** Lambda entry point of `POST /rate`: real dependencies built once per instance. */

import { readEnv, storeFor, topologyFor } from "../adapters/env.js";
import { peerTransferFromEnv } from "../adapters/lambda-peer-transfer.js";
import { powertoolsTelemetry } from "../adapters/powertools.js";
import { systemClock } from "../adapters/system-clock.js";
import { Limiter } from "../app/limiter.js";
import { makeRateHandler } from "../handlers/rate.js";

const env = readEnv();
const transfer = peerTransferFromEnv();
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
      ...(transfer ? { borrow: { transfer, budgetMs: 150 } } : {}),
    }),
    region: env.region,
  }),
);
