/**
 * Which store methods each deployed function may use: the single map the functions' IAM
 * policies are built from (`lib/stacks/region-stack.ts`, through the DynamoDB adapter's
 * `STORE_METHOD_ACTIONS`). `test/unit/app/access.test.ts` runs each function's use cases
 * against a store that refuses every method outside its entry here, so a use case that starts
 * calling a new method fails the tests until the map (and so the IAM policy) allows it.
 */
import type { StoreMethod } from "./adapters/dynamodb/actions.js";

/** The deployed functions that use the table. */
export type TableFunction = "rate" | "status" | "buckets" | "merge" | "transfer" | "heartbeat" | "reconcile" | "forecast";

/** Store methods per function. */
export const FUNCTION_STORE_ACCESS: Readonly<Record<TableFunction, readonly StoreMethod[]>> = {
  // Decide: read and take slices (and return a lease's leftover), create a first row, idempotency records, denied demand,
  // unfreeze a dead rewriter's hold; borrow: read every region's rows, merge the answers.
  rate: [
    "claimBucket",
    "rewriteSlice",
    "getSlice",
    "createSlice",
    "take",
    "refund",
    "getIdempotency",
    "putIdempotency",
    "cancelFreeze",
    "recordDenied",
    "querySlices",
    "adjustSlice",
    "getConfig",
  ],
  // The global view: every region's rows, the heartbeats, and the config and history for forecast scaling.
  status: ["querySlices", "heartbeats", "getConfig", "history"],
  // The admin API: configs, their history, and this region's slice.
  buckets: ["getConfig", "putConfig", "deleteConfig", "appendHistory", "history", "getSlice", "createSlice", "rewriteSlice", "deleteSlice"],
  // Replicated changes: merge and give (or invite the receiver to collect the give), re-base on a
  // config, forget a deleted bucket.
  merge: ["getSlice", "querySlices", "createSlice", "adjustSlice", "rewriteSlice", "deleteSlice", "putInvite"],
  // The lender: read the rows and the config, create its row if it never served the key, give;
  // on a collect, read this region's invite to the collector and give it.
  transfer: ["querySlices", "getConfig", "getSlice", "createSlice", "adjustSlice", "getInvite"],
  heartbeat: ["putHeartbeat"],
  // Accounting, repair, eviction and expiry of this region's rows, in budgeted, resumable passes
  // (scan pages, checkpoints), and the per-rule live-bucket counts; an eviction reads the whole replica once.
  reconcile: [
    "scanPage",
    "getCheckpoint",
    "putCheckpoint",
    "scanAll",
    "heartbeats",
    "getSlice",
    "createSlice",
    "adjustSlice",
    "deleteSlice",
    "rewriteSlice",
    "bucketClaims",
    "setBucketCounts",
  ],
  // Forecasts and forecast scaling (versioned reconfiguration of this region's config and slice).
  // Budgeted, resumable passes: scan pages and a checkpoint of this region.
  forecast: [
    "scanPage",
    "getCheckpoint",
    "putCheckpoint",
    "forecasts",
    "putForecast",
    "getConfig",
    "putConfig",
    "appendHistory",
    "history",
    "getSlice",
    "createSlice",
    "rewriteSlice",
  ],
};
