/** Lambda entry point of the stream merge handler. */
import { readEnv, storeFor, topologyFor } from "../adapters/env.js";
import { peerTransferFromEnv } from "../adapters/lambda-peer-transfer.js";
import { powertoolsTelemetry } from "../adapters/powertools.js";
import { systemClock } from "../adapters/system-clock.js";
import { Merger } from "../app/merger.js";
import { makeStreamMergeHandler } from "../handlers/stream-merge.js";

const env = readEnv();
const transfer = peerTransferFromEnv();
const obs = powertoolsTelemetry("stream-merge", env.region);
export const handler = obs.wrap(
  makeStreamMergeHandler({
    merger: new Merger({
      store: storeFor(env),
      clock: systemClock,
      topology: topologyFor(env),
      // Donor gives are offered to their receivers (direct delivery) unless direct calls are off.
      ...(transfer ? { transfer } : {}),
    }),
    region: env.region,
    telemetry: obs.telemetry,
  }),
);
