/** Lambda entry point of the admin routes `/buckets/{key}`. */

import { readEnv, storeFor, topologyFor } from "../adapters/env.js";
import { powertoolsTelemetry } from "../adapters/powertools.js";
import { systemClock } from "../adapters/system-clock.js";
import { BucketAdmin } from "../app/buckets.js";
import { makeBucketsHandler } from "../handlers/buckets.js";

const env = readEnv();
export const handler = powertoolsTelemetry("buckets", env.region).wrap(
  makeBucketsHandler({
    admin: new BucketAdmin({ store: storeFor(env), clock: systemClock, topology: topologyFor(env) }),
  }),
);
