/**
 * Pure builders between domain values and DynamoDB items/requests. No I/O here: `store.ts`
 * is the one place that sends. Numbers travel as exact decimal strings (`N`), never floats.
 *
 * Table layout: `pk` = bucket key; `sk` = `slice#<region>` (the region's slice row, written
 * only by that region) or `config` (an explicit bucket configuration).
 */
import type { AttributeValue, UpdateItemInput } from "@aws-sdk/client-dynamodb";
import type { OnError } from "../../core/limits.js";
import { fromMillionths, toMillionths } from "../../core/units.js";
import type { BucketConfig, LimitSource, StoredSlice, TakeItem } from "../../ports/bucket-store.js";

/** A DynamoDB item in the low-level attribute-value form. */
export type Item = Record<string, AttributeValue>;

/** Sort key of a region's slice row. */
export const sliceSk = (region: string): string => `slice#${region}`;
/** Sort key of a bucket's explicit configuration. */
export const CONFIG_SK = "config";

const n = (v: bigint | number): AttributeValue => ({ N: v.toString() });
const s = (v: string): AttributeValue => ({ S: v });

function num(item: Item, name: string): bigint {
  const v = item[name]?.N;
  if (v === undefined) throw new Error(`item attribute ${name} is missing or not a number`);
  return BigInt(v);
}
function str(item: Item, name: string): string {
  const v = item[name]?.S;
  if (v === undefined) throw new Error(`item attribute ${name} is missing or not a string`);
  return v;
}
function optNum(item: Item, name: string): bigint | undefined {
  const v = item[name]?.N;
  return v === undefined ? undefined : BigInt(v);
}

/** The primary key of a slice row. */
export function sliceKey(key: string, region: string): Item {
  return { pk: s(key), sk: s(sliceSk(region)) };
}

/** A slice as a full item. */
export function sliceToItem(slice: StoredSlice): Item {
  const item: Item = {
    ...sliceKey(slice.key, slice.region),
    reg: s(slice.region),
    cap: n(slice.capacity),
    rate: n(slice.rate),
    cs: n(slice.capShare),
    rs: n(slice.rateShare),
    e: n(slice.epochUs),
    x: n(slice.mark),
    v: n(slice.version),
    used: n(slice.consumed),
    oe: s(slice.limits.onError),
    src: s(slice.source.kind === "rule" ? `rule:${slice.source.rule}` : `override:${slice.source.version}`),
  };
  if (slice.limits.ttl !== undefined) item.ttl = n(slice.limits.ttl);
  if (slice.frozenUntilUs !== undefined) item.fz = n(slice.frozenUntilUs);
  return item;
}

/** An item as a slice. */
export function itemToSlice(item: Item): StoredSlice {
  const src = str(item, "src");
  const source: LimitSource = src.startsWith("rule:")
    ? { kind: "rule", rule: src.slice(5) }
    : { kind: "override", version: Number(src.slice(9)) };
  const rate = num(item, "rate");
  const ttl = optNum(item, "ttl");
  return {
    key: str(item, "pk"),
    region: str(item, "reg"),
    capacity: num(item, "cap"),
    rate,
    capShare: num(item, "cs"),
    rateShare: num(item, "rs"),
    epochUs: num(item, "e"),
    mark: num(item, "x"),
    version: Number(num(item, "v")),
    consumed: num(item, "used"),
    frozenUntilUs: optNum(item, "fz"),
    source,
    limits: {
      capacity: Number(num(item, "cap")),
      refillRate: fromMillionths(rate),
      ttl: ttl === undefined ? undefined : Number(ttl),
      onError: str(item, "oe") as OnError,
    },
  };
}

/** A conditional update, usable alone or inside a transaction. */
export interface ConditionalUpdate {
  Key: Item;
  UpdateExpression: string;
  ConditionExpression: string;
  ExpressionAttributeValues: Item;
  ReturnValuesOnConditionCheckFailure: "ALL_OLD";
}

/** The one conditional `UpdateItem` of the hot path (without `TableName`). */
export function takeUpdate(region: string, take: TakeItem): ConditionalUpdate {
  const { plan } = take;
  const values: Item = { ":v": n(plan.version), ":n": n(plan.amount) };
  let update: string;
  let condition: string;
  if (plan.kind === "increment") {
    update = "SET x = x + :n, used = used + :n";
    condition = "v = :v AND attribute_not_exists(fz) AND x BETWEEN :lo AND :hi";
    values[":lo"] = n(plan.low);
    values[":hi"] = n(plan.high);
  } else {
    update = "SET x = :x, used = used + :n";
    condition = "v = :v AND attribute_not_exists(fz) AND x < :clock";
    values[":x"] = n(plan.newMark);
    values[":clock"] = n(plan.clock);
  }
  if (take.expiresAt !== undefined) {
    update += ", exp = :exp";
    values[":exp"] = n(take.expiresAt);
  }
  return {
    Key: sliceKey(take.key, region),
    UpdateExpression: update,
    ConditionExpression: condition,
    ExpressionAttributeValues: values,
    ReturnValuesOnConditionCheckFailure: "ALL_OLD",
  };
}

/** Step 1 of a rewrite: freeze the row and bump its version (without `TableName`). */
export function freezeUpdate(key: string, region: string, version: number, untilUs: bigint): Omit<UpdateItemInput, "TableName"> {
  return {
    Key: sliceKey(key, region),
    UpdateExpression: "SET v = :next, fz = :fz",
    ConditionExpression: "v = :v",
    ExpressionAttributeValues: { ":v": n(version), ":next": n(version + 1), ":fz": n(untilUs) },
    ReturnValues: "ALL_NEW",
  };
}

/** Lifts an expired freeze by bumping the version, so the stalled rewrite can never land. */
export function cancelFreezeUpdate(key: string, region: string, version: number): Omit<UpdateItemInput, "TableName"> {
  return {
    Key: sliceKey(key, region),
    UpdateExpression: "SET v = :next REMOVE fz",
    ConditionExpression: "v = :v AND attribute_exists(fz)",
    ExpressionAttributeValues: { ":v": n(version), ":next": n(version + 1) },
  };
}

/** A config as an item. */
export function configToItem(config: BucketConfig): Item {
  const { limits } = config;
  const rate = toMillionths(limits.refillRate);
  if (rate === undefined) throw new RangeError(`refillRate ${limits.refillRate} is not fixed-point`);
  const item: Item = {
    pk: s(config.key),
    sk: s(CONFIG_SK),
    cap: n(limits.capacity),
    rate: n(rate),
    oe: s(limits.onError),
    ver: n(config.version),
    at: n(config.updatedAt),
    by: s(config.updatedBy),
  };
  if (limits.ttl !== undefined) item.ttl = n(limits.ttl);
  return item;
}

/** An item as a config. */
export function itemToConfig(item: Item): BucketConfig {
  const ttl = optNum(item, "ttl");
  return {
    key: str(item, "pk"),
    version: Number(num(item, "ver")),
    updatedAt: Number(num(item, "at")),
    updatedBy: str(item, "by"),
    limits: {
      capacity: Number(num(item, "cap")),
      refillRate: fromMillionths(num(item, "rate")),
      ttl: ttl === undefined ? undefined : Number(ttl),
      onError: str(item, "oe") as OnError,
    },
  };
}
