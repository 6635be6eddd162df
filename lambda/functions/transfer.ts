/** Lambda entry point of the transfer function: lends share to a peer region that ran dry, and collects offered gives. */
import { readEnv, storeFor, topologyFor } from "../adapters/env.js";
import { peerTransferFromEnv } from "../adapters/lambda-peer-transfer.js";
import { powertoolsTelemetry } from "../adapters/powertools.js";
import { systemClock } from "../adapters/system-clock.js";
import { Merger } from "../app/merger.js";
import { makeTransferHandler } from "../handlers/transfer.js";

const env = readEnv();
const transfer = peerTransferFromEnv();
export const handler = powertoolsTelemetry("transfer", env.region).wrap(
  makeTransferHandler({
    merger: new Merger({
      store: storeFor(env),
      clock: systemClock,
      topology: topologyFor(env),
      rules: env.rules,
      // An offer is collected from its giver: one borrow call that lends nothing.
      ...(transfer ? { transfer } : {}),
    }),
  }),
);
