/**
 * Pure builders between domain values and DynamoDB items/requests. No I/O here: `store.ts`
 * is the one place that sends. Numbers travel as exact decimal strings (`N`), never floats.
 *
 * Table layout: `pk` = bucket key; `sk` = `slice#<region>` (the region's slice row, written
 * only by that region) or `config` (an explicit bucket configuration).
 */
import type { AttributeValue, UpdateItemInput } from "@aws-sdk/client-dynamodb";
import type { Transfer } from "../../core/escrow.js";
import type { Forecast } from "../../core/forecast.js";
import type { RefundPlan } from "../../core/lease.js";
import { expiryOf, type OnError } from "../../core/limits.js";
import type { AdjustPlan } from "../../core/slice.js";
import { fromMillionths, toMillionths } from "../../core/units.js";
import type {
  BucketConfig,
  GeometryWriter,
  HistoryEntry,
  IdempotencyRecord,
  Invite,
  LimitSource,
  StoredSlice,
  TakeItem,
} from "../../ports/bucket-store.js";

/** A DynamoDB item in the low-level attribute-value form. */
export type Item = Record<string, AttributeValue>;

/** Sort-key prefix of slice rows. */
export const SLICE_PREFIX = "slice#";
/** Sort key of a region's slice row. */
export const sliceSk = (region: string): string => `${SLICE_PREFIX}${region}`;
/** Sort key of a bucket's explicit configuration. */
export const CONFIG_SK = "config";
/** Partition key of the heartbeat rows (`sk` = region). */
export const HEARTBEAT_PK = "#heartbeat";

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

function transfersToItem(map: Readonly<Record<string, Transfer>>): AttributeValue {
  const out: Record<string, AttributeValue> = {};
  for (const [region, t] of Object.entries(map)) out[region] = { M: { c: n(t.cap), r: n(t.rate), t: n(t.tokens) } };
  return { M: out };
}

function evictionsToItem(map: StoredSlice["evicted"]): AttributeValue {
  const out: Record<string, AttributeValue> = {};
  for (const [region, e] of Object.entries(map ?? {})) out[region] = { M: { by: s(e.by), c: n(e.cap), r: n(e.rate) } };
  return { M: out };
}

function itemToEvictions(value: AttributeValue | undefined): StoredSlice["evicted"] {
  const entries = Object.entries(value?.M ?? {});
  if (entries.length === 0) return undefined;
  return Object.fromEntries(
    entries.map(([region, v]) => [region, { by: v.M?.by?.S ?? "", cap: BigInt(v.M?.c?.N ?? "0"), rate: BigInt(v.M?.r?.N ?? "0") }]),
  );
}

function itemToTransfers(value: AttributeValue | undefined): Record<string, Transfer> {
  const out: Record<string, Transfer> = {};
  for (const [region, v] of Object.entries(value?.M ?? {})) {
    const m = v.M ?? {};
    out[region] = { cap: BigInt(m.c?.N ?? "0"), rate: BigInt(m.r?.N ?? "0"), tokens: BigInt(m.t?.N ?? "0") };
  }
  return out;
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
    dn: n(slice.denied),
    hb: n(slice.heartbeatUs),
    ...geometry(slice),
  };
  if (slice.frozenUntilUs !== undefined) item.fz = n(slice.frozenUntilUs);
  // A created row expires too, even if no take ever touches it.
  const exp = expiryOf(slice.limits, slice.heartbeatUs);
  if (exp !== undefined) item.exp = n(exp);
  if (slice.lastDeniedUs !== undefined) item.ld = n(slice.lastDeniedUs);
  if (slice.claim !== undefined) item.cl = n(slice.claim);
  return item;
}

/** The attributes a rewrite sets: everything but the counters other writers may bump meanwhile. */
function geometry(slice: StoredSlice): Item {
  const item: Item = {
    cap: n(slice.capacity),
    rate: n(slice.rate),
    cs: n(slice.capShare),
    rs: n(slice.rateShare),
    e: n(slice.epochUs),
    x: n(slice.mark),
    v: n(slice.version),
    gv: transfersToItem(slice.gives),
    tk: transfersToItem(slice.takes),
    ev: evictionsToItem(slice.evicted),
    oe: s(slice.limits.onError),
    src: s(slice.source.kind === "rule" ? `rule:${slice.source.rule}` : `override:${slice.source.version}`),
    cat: n(slice.configAt ?? 0),
  };
  if (slice.limits.ttl !== undefined) item.ttl = n(slice.limits.ttl);
  if (slice.writer !== undefined) item.wb = s(slice.writer);
  return item;
}

/**
 * Step 2 of a rewrite: the new geometry, conditioned on our freeze still holding. Counters
 * (`used`, `dn`, `hb`, `ld`) are left as they are.
 */
export function rewriteUpdate(slice: StoredSlice, frozenVersion: number, freezeUntilUs: bigint): Omit<UpdateItemInput, "TableName"> {
  const values: Item = { ":fv": n(frozenVersion), ":fz": n(freezeUntilUs) };
  const sets: string[] = [];
  const names: Record<string, string> = {};
  for (const [name, value] of Object.entries(geometry(slice))) {
    names[`#${name}`] = name;
    values[`:${name}`] = value;
    sets.push(`#${name} = :${name}`);
  }
  const removes = ["fz", ...(slice.limits.ttl === undefined ? ["#ttl_rm"] : [])];
  if (slice.limits.ttl === undefined) names["#ttl_rm"] = "ttl";
  return {
    Key: sliceKey(slice.key, slice.region),
    UpdateExpression: `SET ${sets.join(", ")} REMOVE ${removes.join(", ")}`,
    ConditionExpression: "v = :fv AND fz = :fz",
    ExpressionAttributeNames: names,
    ExpressionAttributeValues: values,
    ReturnValues: "ALL_NEW",
  };
}

/** The conditional write of an escrow adjust (see `planAdjust`). */
export function adjustUpdate(
  key: string,
  region: string,
  plan: AdjustPlan,
  counters: Pick<StoredSlice, "gives" | "takes" | "evicted">,
  writer: GeometryWriter,
): Omit<UpdateItemInput, "TableName"> {
  const n2 = plan.next;
  const values: Item = {
    ":wb": s(writer),
    ":v": n(plan.version),
    ":nv": n(n2.version),
    ":e": n(n2.epochUs),
    ":cap": n(n2.capacity),
    ":rate": n(n2.rate),
    ":cs": n(n2.capShare),
    ":rs": n(n2.rateShare),
    ":gv": transfersToItem(counters.gives),
    ":tk": transfersToItem(counters.takes),
    ":ev": evictionsToItem(counters.evicted),
  };
  let setMark: string;
  let condition: string;
  if (plan.kind === "add") {
    setMark = "x = x + :add";
    condition = "v = :v AND attribute_not_exists(fz) AND x BETWEEN :lo AND :hi";
    values[":add"] = n(plan.add);
    values[":lo"] = n(plan.low);
    values[":hi"] = n(plan.high);
  } else {
    setMark = "x = :x";
    condition = "v = :v AND attribute_not_exists(fz) AND x < :clock";
    values[":x"] = n(plan.mark);
    values[":clock"] = n(plan.clock);
  }
  return {
    Key: sliceKey(key, region),
    UpdateExpression: `SET ${setMark}, v = :nv, e = :e, cap = :cap, rate = :rate, cs = :cs, rs = :rs, gv = :gv, tk = :tk, ev = :ev, wb = :wb`,
    ConditionExpression: condition,
    ExpressionAttributeValues: values,
    ReturnValues: "ALL_NEW",
    ReturnValuesOnConditionCheckFailure: "ALL_OLD",
  };
}

/** Publishes denied demand: counters and heartbeat only, never conditioned on the version. */
export function deniedUpdate(key: string, region: string, amount: bigint, nowUs: bigint): Omit<UpdateItemInput, "TableName"> {
  return {
    Key: sliceKey(key, region),
    UpdateExpression: "SET dn = dn + :d, hb = :now, ld = :now",
    ConditionExpression: "attribute_exists(pk)",
    ExpressionAttributeValues: { ":d": n(amount), ":now": n(nowUs) },
  };
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
    // Every request is admitted (used) or denied (dn): the demand counter is their sum, not stored.
    requested: num(item, "used") + (optNum(item, "dn") ?? 0n),
    denied: optNum(item, "dn") ?? 0n,
    heartbeatUs: optNum(item, "hb") ?? 0n,
    lastDeniedUs: optNum(item, "ld"),
    gives: itemToTransfers(item.gv),
    takes: itemToTransfers(item.tk),
    evicted: itemToEvictions(item.ev),
    configAt: Number(optNum(item, "cat") ?? 0n),
    frozenUntilUs: optNum(item, "fz"),
    writer: item.wb?.S,
    claim: item.cl?.N === undefined ? undefined : Number(item.cl.N),
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
  const values: Item = { ":v": n(plan.version), ":n": n(plan.amount), ":now": n(take.nowUs) };
  let update: string;
  let condition: string;
  if (plan.kind === "increment") {
    update = "SET x = x + :n, used = used + :n, hb = :now";
    // No freeze check: a freeze bumps the version, and the policy never plans on a frozen row.
    condition = "v = :v AND x BETWEEN :lo AND :hi";
    values[":lo"] = n(plan.low);
    values[":hi"] = n(plan.high);
  } else {
    update = "SET x = :x, used = used + :n, hb = :now";
    condition = "v = :v AND x < :clock";
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

/** The refund of a lease's leftover (without `TableName`): the mark and the admitted total go back by the amount. */
export function refundUpdate(key: string, region: string, plan: RefundPlan): ConditionalUpdate {
  return {
    Key: sliceKey(key, region),
    UpdateExpression: "SET x = x - :n, used = used - :n",
    ConditionExpression: "v = :v AND x >= :min",
    ExpressionAttributeValues: { ":n": n(plan.amount), ":v": n(plan.version), ":min": n(plan.clock + plan.amount) },
    ReturnValuesOnConditionCheckFailure: "ALL_OLD",
  };
}

/** Step 1 of a rewrite: freeze the row and bump its version (without `TableName`). */
export function freezeUpdate(key: string, region: string, version: number, untilUs: bigint): Omit<UpdateItemInput, "TableName"> {
  return {
    Key: sliceKey(key, region),
    UpdateExpression: "SET v = :next, fz = :fz, wb = :wb",
    ConditionExpression: "v = :v",
    ExpressionAttributeValues: { ":v": n(version), ":next": n(version + 1), ":fz": n(untilUs), ":wb": s("config") },
    ReturnValues: "ALL_NEW",
  };
}

/** Lifts an expired freeze by bumping the version, so the stalled rewrite can never land. */
export function cancelFreezeUpdate(key: string, region: string, version: number): Omit<UpdateItemInput, "TableName"> {
  return {
    Key: sliceKey(key, region),
    UpdateExpression: "SET v = :next, wb = :wb REMOVE fz",
    ConditionExpression: "v = :v AND attribute_exists(fz)",
    ExpressionAttributeValues: { ":v": n(version), ":next": n(version + 1), ":wb": s("unfreeze") },
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
    org: s(config.origin),
  };
  if (limits.ttl !== undefined) item.ttl = n(limits.ttl);
  if (config.inherit) item.inh = s(config.inherit);
  if (config.predictive !== undefined) item.prd = { BOOL: config.predictive };
  if (config.forecastGrowth !== undefined) item.grw = { BOOL: config.forecastGrowth };
  const bounds: Item = {};
  for (const [k, v] of Object.entries(config.bounds ?? {})) if (v !== undefined) bounds[k] = n(toMillionths(v) ?? 0n);
  if (Object.keys(bounds).length > 0) item.bnd = { M: bounds };
  return item;
}

/** A scheduled job's checkpoint item in one region (its sort key matches none of the merge functions' stream filters). */
export const checkpointKey = (job: string, region: string): Item => ({ pk: s("#checkpoint"), sk: s(`checkpoint#${job}#${region}`) });

/** Partition of the rules' live-bucket counters, and the sort-key prefix of one region's. */
export const BUCKET_COUNT_PK = "#bucketcount";
export const bucketCountPrefix = (region: string): string => `bucketcount#${region}#`;

/** A rule's live-bucket counter in one region (its sort key matches no stream filter). */
export const bucketCountKey = (rule: string, region: string): Item => ({
  pk: s(BUCKET_COUNT_PK),
  sk: s(`${bucketCountPrefix(region)}${rule}`),
});

/** Sort-key prefix of forecasts (`forecast#<region>`). */
export const FORECAST_PREFIX = "forecast#";

/** A forecast as an item. */
export function forecastToItem(f: Forecast): Item {
  return {
    pk: s(f.key),
    sk: s(`${FORECAST_PREFIX}${f.region}`),
    reg: s(f.region),
    body: s(JSON.stringify(f)),
    until: n(Math.ceil(f.untilMs / 1000)),
  };
}

/** An item as a forecast. */
export function itemToForecast(item: Item): Forecast {
  return JSON.parse(str(item, "body")) as Forecast;
}

/** Sort-key prefix of invites (`invite#<giver>#<receiver>`); no stream filter or scan matches it. */
export const INVITE_PREFIX = "invite#";

/** How long an invite item lives before the table's TTL may delete it, s (a stale one is never given: see `Invite`). */
export const INVITE_ITEM_TTL_S = 60;

/** The key of a region's invite to `receiver` for `key`. */
export const inviteKey = (key: string, giver: string, receiver: string): Item => ({
  pk: s(key),
  sk: s(`${INVITE_PREFIX}${giver}#${receiver}`),
});

const transferToJson = (t: Transfer) => ({ cap: String(t.cap), rate: String(t.rate), tokens: String(t.tokens) });
const transferFromJson = (t: { cap: string; rate: string; tokens: string }): Transfer => ({
  cap: BigInt(t.cap),
  rate: BigInt(t.rate),
  tokens: BigInt(t.tokens),
});

/** An invite as an item (`exp`: the table's TTL attribute). */
export function inviteToItem(i: Invite, nowMs: number): Item {
  const body = {
    key: i.key,
    giver: i.giver,
    receiver: i.receiver,
    cap: String(i.cap),
    rate: String(i.rate),
    base: transferToJson(i.base),
    heldCap: String(i.heldCap),
    heldRate: String(i.heldRate),
    atUs: String(i.atUs),
  };
  return { ...inviteKey(i.key, i.giver, i.receiver), body: s(JSON.stringify(body)), exp: n(Math.ceil(nowMs / 1000) + INVITE_ITEM_TTL_S) };
}

/** An item as an invite. */
export function itemToInvite(item: Item): Invite {
  const b = JSON.parse(str(item, "body")) as Record<string, string> & { base: { cap: string; rate: string; tokens: string } };
  return {
    key: b.key as string,
    giver: b.giver as string,
    receiver: b.receiver as string,
    cap: BigInt(b.cap as string),
    rate: BigInt(b.rate as string),
    base: transferFromJson(b.base),
    heldCap: BigInt(b.heldCap as string),
    heldRate: BigInt(b.heldRate as string),
    atUs: BigInt(b.atUs as string),
  };
}

/** Sort-key prefix of history entries. */
export const HISTORY_PREFIX = "history#";

/** A history entry as an item (`sk` orders entries by time, then version). */
export function historyToItem(e: HistoryEntry): Item {
  return {
    pk: s(e.key),
    sk: s(`${HISTORY_PREFIX}${String(e.at).padStart(15, "0")}#${String(e.version).padStart(9, "0")}#${e.region}`),
    reg: s(e.region),
    body: s(JSON.stringify(e)),
  };
}

/** An item as a history entry. */
export function itemToHistory(item: Item): HistoryEntry {
  return JSON.parse(str(item, "body")) as HistoryEntry;
}

/** An item as a config. */
export function itemToConfig(item: Item): BucketConfig {
  const ttl = optNum(item, "ttl");
  return {
    key: str(item, "pk"),
    version: Number(num(item, "ver")),
    updatedAt: Number(num(item, "at")),
    updatedBy: str(item, "by"),
    origin: item.org?.S ?? "",
    inherit: item.inh?.S as BucketConfig["inherit"],
    predictive: item.prd?.BOOL,
    forecastGrowth: item.grw?.BOOL,
    bounds: item.bnd?.M
      ? Object.fromEntries(Object.entries(item.bnd.M).map(([k, v]) => [k, fromMillionths(BigInt(v.N ?? "0"))]))
      : undefined,
    limits: {
      capacity: Number(num(item, "cap")),
      refillRate: fromMillionths(num(item, "rate")),
      ttl: ttl === undefined ? undefined : Number(ttl),
      onError: str(item, "oe") as OnError,
    },
  };
}

/** The key of an idempotency record. */
export const idempotencyKey = (id: string): Item => ({ pk: s(`#idem#${id}`), sk: s("idem") });

/** An idempotency record as an item (`exp`: the table's TTL attribute). */
export function idempotencyToItem(r: IdempotencyRecord): Item {
  return {
    ...idempotencyKey(r.id),
    fp: s(r.fingerprint),
    dec: s(r.decision),
    expMs: n(r.expiresAtMs),
    exp: n(Math.ceil(r.expiresAtMs / 1000)),
  };
}

/** An item as an idempotency record. */
export function itemToIdempotency(id: string, item: Item): IdempotencyRecord {
  return { id, fingerprint: str(item, "fp"), decision: str(item, "dec"), expiresAtMs: Number(num(item, "expMs")) };
}
