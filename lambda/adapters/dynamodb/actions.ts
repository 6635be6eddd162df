/**
 * The DynamoDB actions each {@link BucketStore} method of the DynamoDB adapter sends (a
 * transaction needs the action of every item it holds). Together with the functions' store
 * access (`lambda/access.ts`) it is the one source of the functions' IAM policies
 * (`lib/stacks/region-stack.ts`); `test/integration/iam-map.test.ts` records what each method
 * really sends against DynamoDB Local and fails when it sends an action missing here.
 */
import type { BucketStore } from "../../ports/bucket-store.js";

/** A store method (everything but the region and the call counters). */
export type StoreMethod = Exclude<keyof BucketStore, "region" | "stats">;

/** A DynamoDB IAM action on the table. */
export type TableAction =
  | "dynamodb:GetItem"
  | "dynamodb:PutItem"
  | "dynamodb:UpdateItem"
  | "dynamodb:DeleteItem"
  | "dynamodb:ConditionCheckItem"
  | "dynamodb:Query"
  | "dynamodb:Scan";

/** What each store method sends. */
export const STORE_METHOD_ACTIONS: Readonly<Record<StoreMethod, readonly TableAction[]>> = {
  getSlice: ["dynamodb:GetItem"],
  createSlice: ["dynamodb:PutItem"],
  // One bucket: an UpdateItem; several, or with an idempotency record: a transaction of updates and a put.
  take: ["dynamodb:UpdateItem", "dynamodb:PutItem"],
  refund: ["dynamodb:UpdateItem"],
  getIdempotency: ["dynamodb:GetItem"],
  putIdempotency: ["dynamodb:PutItem"],
  rewriteSlice: ["dynamodb:GetItem", "dynamodb:UpdateItem"],
  adjustSlice: ["dynamodb:UpdateItem"],
  scanAll: ["dynamodb:Scan"],
  scanPage: ["dynamodb:Scan"],
  getCheckpoint: ["dynamodb:GetItem"],
  claimBucket: ["dynamodb:UpdateItem"],
  bucketClaims: ["dynamodb:Query"],
  setBucketCounts: ["dynamodb:Query", "dynamodb:UpdateItem"],
  putCheckpoint: ["dynamodb:PutItem", "dynamodb:DeleteItem"],
  cancelFreeze: ["dynamodb:UpdateItem"],
  querySlices: ["dynamodb:Query"],
  recordDenied: ["dynamodb:UpdateItem"],
  putHeartbeat: ["dynamodb:PutItem"],
  heartbeats: ["dynamodb:Query"],
  deleteSlice: ["dynamodb:DeleteItem"],
  getConfig: ["dynamodb:GetItem"],
  putConfig: ["dynamodb:PutItem"],
  deleteConfig: ["dynamodb:DeleteItem"],
  putForecast: ["dynamodb:PutItem"],
  forecasts: ["dynamodb:Query"],
  putInvite: ["dynamodb:PutItem"],
  getInvite: ["dynamodb:GetItem"],
  appendHistory: ["dynamodb:PutItem"],
  history: ["dynamodb:Query"],
};

/** The sorted, distinct actions a set of store methods needs. */
export function actionsFor(methods: readonly StoreMethod[]): TableAction[] {
  return [...new Set(methods.flatMap((m) => STORE_METHOD_ACTIONS[m]))].sort();
}
