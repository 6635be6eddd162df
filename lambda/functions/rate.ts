/** Lambda entry point of `POST /rate`: real dependencies built once per instance. */

import { readEnv, storeFor, topologyFor } from "../adapters/env.js";
import { systemClock } from "../adapters/system-clock.js";
import { Limiter } from "../app/limiter.js";
import { makeRateHandler } from "../handlers/rate.js";

const env = readEnv();
export const handler = makeRateHandler({
  limiter: new Limiter({ store: storeFor(env), clock: systemClock, rules: env.rules, topology: topologyFor(env) }),
  region: env.region,
});
