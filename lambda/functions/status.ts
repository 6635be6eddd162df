/** Lambda entry point of `GET /status/{key}`. */
import { readEnv, storeFor } from "../adapters/env.js";
import { systemClock } from "../adapters/system-clock.js";
import { makeStatusHandler } from "../handlers/status.js";

const env = readEnv();
export const handler = makeStatusHandler({ store: storeFor(env), clock: systemClock });
