/**
 * The DynamoDB {@link BucketStore}: the one place that calls `send`. Engine errors never leak:
 * a failed condition becomes a domain result, anything else a `StoreUnavailableError`.
 *
 * Retries are deliberate: a write is retried only when the engine certainly did not apply
 * it (throttled, or no connection was made), so a token is never charged twice; reads are
 * retried on fast transient faults. Every call has a timeout that fires (the SDK's
 * `requestTimeout` only warns unless `throwOnRequestTimeout` is set), and a timed-out call is
 * never retried, so a hung engine costs a decision one timeout, not several. A write that timed
 * out, or whose connection broke after it was sent, may have applied: it fails with
 * `store.outcome_unknown`, never with `store.unavailable` (which promises nothing was charged).
 * Build the client with {@link makeDynamoClient}: `maxAttempts: 1`, so the SDK does not retry
 * writes behind our back.
 */
import {
  type AttributeValue,
  ConditionalCheckFailedException,
  DeleteItemCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  ScanCommand,
  TransactionCanceledException,
  TransactWriteItemsCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import { StoreUnavailableError } from "../../core/errors.js";
import type { Forecast } from "../../core/forecast.js";
import type { RefundPlan } from "../../core/lease.js";
import { type AdjustPlan, applyTake } from "../../core/slice.js";
import type {
  BucketConfig,
  BucketStore,
  GeometryWriter,
  HistoryEntry,
  IdempotencyRecord,
  Invite,
  ScanPage,
  StoredSlice,
  TakeItem,
  TakeOutcome,
} from "../../ports/bucket-store.js";
import {
  adjustUpdate,
  BUCKET_COUNT_PK,
  bucketCountKey,
  bucketCountPrefix,
  CONFIG_SK,
  cancelFreezeUpdate,
  checkpointKey,
  configToItem,
  deniedUpdate,
  FORECAST_PREFIX,
  forecastToItem,
  freezeUpdate,
  HEARTBEAT_PK,
  HISTORY_PREFIX,
  historyToItem,
  type Item,
  idempotencyKey,
  idempotencyToItem,
  inviteKey,
  inviteToItem,
  itemToConfig,
  itemToForecast,
  itemToHistory,
  itemToIdempotency,
  itemToInvite,
  itemToSlice,
  refundUpdate,
  rewriteUpdate,
  SLICE_PREFIX,
  sliceKey,
  sliceToItem,
  takeUpdate,
} from "./items.js";

/** Options of {@link makeDynamoClient}. */
export interface DynamoClientOptions {
  readonly region: string;
  /** Custom endpoint (DynamoDB Local); omit in AWS. */
  readonly endpoint?: string | undefined;
  /** Per-request timeout, ms: the call fails with a timeout then (it does not only warn). @default 1000 */
  readonly requestTimeoutMs?: number;
  /**
   * DynamoDB Local only: the namespace (its access key id; each has its own tables and stream
   * records). @default "local"
   */
  readonly localNamespace?: string;
}

/** DynamoDB Local's credentials: the access key id names the namespace (its own tables and stream records). */
export function localCredentials(namespace = "local"): { accessKeyId: string; secretAccessKey: string } {
  return { accessKeyId: namespace, secretAccessKey: "local" };
}

/** The default per-request timeout, ms (`TOKENBANK_DYNAMODB_TIMEOUT_MS` in the functions). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 1000;

/** A DynamoDB client suited to the store: no SDK-level retries, timeouts that fire. */
export function makeDynamoClient(options: DynamoClientOptions): DynamoDBClient {
  const requestTimeout = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  return new DynamoDBClient({
    region: options.region,
    maxAttempts: 1,
    requestHandler: { requestTimeout, connectionTimeout: Math.min(500, requestTimeout), throwOnRequestTimeout: true },
    ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint, credentials: localCredentials(options.localNamespace) }),
  });
}

const THROTTLED = new Set([
  "ProvisionedThroughputExceededException",
  "ThrottlingException",
  "RequestLimitExceeded",
  "LimitExceededException",
]);
const NOT_SENT = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN"]);

function errorName(error: unknown): string {
  if (typeof error !== "object" || error === null) return "";
  const e = error as { name?: string; code?: string };
  return e.code ?? e.name ?? "";
}

/** What a failed call tells about whether it reached the engine. */
type Fault = "throttled" | "not-sent" | "timeout" | "maybe-sent" | "client";

function classify(error: unknown): Fault {
  const name = errorName(error);
  if (THROTTLED.has(name)) return "throttled";
  if (NOT_SENT.has(name)) return "not-sent";
  const message = error instanceof Error ? error.message : "";
  // The connection timeout fires before anything was sent; every other timeout after.
  if (message.includes("did not establish a connection")) return "not-sent";
  if ((error as { name?: string }).name === "TimeoutError" || name === "ETIMEDOUT" || name === "TimeoutError") return "timeout";
  if (isClientFault(error)) return "client";
  return "maybe-sent";
}

/** Attempts per request, and the base backoff between them. */
const ATTEMPTS = 3;
const BACKOFF_MS = 15;
/** A retry is not started with less of the call's budget left than this, ms. */
const MIN_RETRY_MS = 50;

/**
 * Waits for an attempt at most `ms`; then fails with a timeout (the attempt itself is left to
 * the client's timeouts, and, being a retry of something that certainly did not apply or of a
 * read, it is judged as any timed-out call is: a write's outcome is unknown).
 */
function withinBudget<T>(attempt: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(Object.assign(new Error(`the call's ${ms.toFixed(0)} ms budget ran out`), { name: "TimeoutError" })),
      ms,
    );
  });
  attempt.catch(() => undefined); // a late failure of an abandoned attempt is not unhandled
  return Promise.race([attempt, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Who made a call: the hot path (`take`, `read`, `create`, `idempotency`), a background writer
 * of the slice row ({@link GeometryWriter}s, `denied`), or the other jobs.
 */
export type CallPurpose =
  | "take"
  | "read"
  | "create"
  | "idempotency"
  | "denied"
  | "heartbeat"
  | "query"
  | "scan"
  | "delete"
  | "forecast"
  | "history"
  | "checkpoint"
  | "cap"
  | "refund"
  | "invite"
  | GeometryWriter;

/** DynamoDB-backed store for one region's replica of the table. */
export class DynamoBucketStore implements BucketStore {
  readonly region: string;
  private readonly client: DynamoDBClient;
  private readonly table: string;
  private readonly counts: Record<string, number> = {};

  private readonly callBudgetMs: number;

  /**
   * @param options.callBudgetMs what one call may take, retries included: the client's request
   *   timeout (`makeDynamoClient`'s `requestTimeoutMs`). A retry starts only within it and is
   *   abandoned when it runs out. @default 1000
   */
  constructor(options: { client: DynamoDBClient; tableName: string; region: string; callBudgetMs?: number | undefined }) {
    this.client = options.client;
    this.table = options.tableName;
    this.region = options.region;
    this.callBudgetMs = options.callBudgetMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  }

  /** Calls so far by purpose (see {@link CallPurpose}), and failed conditions as `failed.<purpose>`. */
  stats(): Record<string, number> {
    return { ...this.counts };
  }

  /**
   * Sends one command, counting it by the writer (or reader) that made it, and every failed
   * condition as `failed.<purpose>`; retries only what is safe to retry.
   */
  private async send<T>(purpose: CallPurpose, idempotent: boolean, run: () => Promise<T>): Promise<T> {
    const deadline = performance.now() + this.callBudgetMs;
    for (let attempt = 1; ; attempt++) {
      this.counts[purpose] = (this.counts[purpose] ?? 0) + 1;
      try {
        // The first attempt is bounded by the client's own timeouts; a retry by what is left of the budget.
        return attempt === 1 ? await run() : await withinBudget(run(), deadline - performance.now());
      } catch (error) {
        if (error instanceof ConditionalCheckFailedException || error instanceof TransactionCanceledException) {
          this.counts[`failed.${purpose}`] = (this.counts[`failed.${purpose}`] ?? 0) + 1;
          throw error;
        }
        const fault = classify(error);
        // Retry what certainly did not apply, and reads that failed fast; never a timed-out call,
        // and never past the call's budget (a paused engine refuses connections for as long as it lasts).
        const backoffMs = BACKOFF_MS * 2 ** (attempt - 1) * Math.random();
        const retry = fault === "throttled" || fault === "not-sent" || (idempotent && fault === "maybe-sent");
        if (!retry || attempt >= ATTEMPTS || deadline - performance.now() - backoffMs < MIN_RETRY_MS) {
          this.counts[`fault.${fault}`] = (this.counts[`fault.${fault}`] ?? 0) + 1;
          if (fault === "throttled") {
            throw new StoreUnavailableError("store.throttled", "the bucket store is throttling requests; retry shortly", { cause: error });
          }
          if (!idempotent && (fault === "timeout" || fault === "maybe-sent")) {
            throw new StoreUnavailableError(
              "store.outcome_unknown",
              "the bucket store did not confirm the write; it may have applied. Retry with the same Idempotency-Key to be charged at most once",
              { cause: error },
            );
          }
          throw new StoreUnavailableError(
            fault === "timeout" ? "store.timeout" : "store.unavailable",
            fault === "timeout"
              ? "the bucket store did not answer in time; nothing was charged"
              : "the bucket store is unavailable; nothing was charged",
            { cause: error },
          );
        }
        await new Promise((r) => setTimeout(r, backoffMs));
      }
    }
  }

  /**
   * Sends one conditional write (never retried once it may have applied, as {@link send}): its
   * output, or, when its condition failed, the item the engine returned with the failure (with
   * `ReturnValuesOnConditionCheckFailure: ALL_OLD`). Every other error is thrown.
   */
  private async conditional<T>(
    purpose: CallPurpose,
    run: () => Promise<T>,
  ): Promise<{ readonly ok: true; readonly out: T } | { readonly ok: false; readonly item: Item | undefined }> {
    try {
      return { ok: true, out: await this.send(purpose, false, run) };
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return { ok: false, item: error.Item };
      throw error;
    }
  }

  async getSlice(key: string): Promise<StoredSlice | undefined> {
    const out = await this.send("read", true, () =>
      this.client.send(new GetItemCommand({ TableName: this.table, Key: sliceKey(key, this.region), ConsistentRead: true })),
    );
    return out.Item ? itemToSlice(out.Item) : undefined;
  }

  async createSlice(slice: StoredSlice): Promise<StoredSlice> {
    const written = await this.conditional("create", () =>
      this.client.send(
        new PutItemCommand({
          TableName: this.table,
          Item: sliceToItem(slice),
          ConditionExpression: "attribute_not_exists(pk)",
          ReturnValuesOnConditionCheckFailure: "ALL_OLD",
        }),
      ),
    );
    if (written.ok) return slice;
    if (written.item) return itemToSlice(written.item); // someone created it first: theirs stands
    throw new StoreUnavailableError("store.unavailable", `the slice of "${slice.key}" exists but was not returned`);
  }

  async take(items: readonly TakeItem[], record?: IdempotencyRecord): Promise<TakeOutcome> {
    if (items.length === 1 && !record) return this.takeOne(items[0] as TakeItem);
    const updates = items.map((item) => ({ Update: { ...takeUpdate(this.region, item), TableName: this.table } }));
    const put = record
      ? [{ Put: { TableName: this.table, Item: idempotencyToItem(record), ConditionExpression: "attribute_not_exists(pk)" } }]
      : [];
    try {
      await this.send("take", false, () => this.client.send(new TransactWriteItemsCommand({ TransactItems: [...updates, ...put] })));
    } catch (error) {
      if (!(error instanceof TransactionCanceledException)) throw error;
      const reasons = error.CancellationReasons ?? [];
      const actual = items.map((_, i) => {
        const reason = reasons[i];
        if (reason?.Code !== "ConditionalCheckFailed") return undefined;
        return reason.Item ? itemToSlice(reason.Item as Item) : null;
      });
      if (record && reasons[items.length]?.Code === "ConditionalCheckFailed") return { ok: false, duplicate: true, actual };
      return { ok: false, actual };
    }
    // Transactions return no values. The version held, so the geometry is the planned row's; the
    // mark is at least what the plan wrote (takes by other instances can only have raised it).
    return { ok: true, slices: items.map((item) => withTaken(item, {})) };
  }

  async getIdempotency(id: string): Promise<IdempotencyRecord | undefined> {
    const out = await this.send("idempotency", true, () =>
      this.client.send(new GetItemCommand({ TableName: this.table, Key: idempotencyKey(id), ConsistentRead: true })),
    );
    return out.Item ? itemToIdempotency(id, out.Item) : undefined;
  }

  async putIdempotency(record: IdempotencyRecord): Promise<"ok" | "exists"> {
    const written = await this.conditional("idempotency", () =>
      this.client.send(
        new PutItemCommand({ TableName: this.table, Item: idempotencyToItem(record), ConditionExpression: "attribute_not_exists(pk)" }),
      ),
    );
    return written.ok ? "ok" : "exists";
  }

  async refund(key: string, plan: RefundPlan): Promise<boolean> {
    const written = await this.conditional("refund", () =>
      this.client.send(new UpdateItemCommand({ ...refundUpdate(key, this.region, plan), TableName: this.table })),
    );
    return written.ok;
  }

  private async takeOne(item: TakeItem): Promise<TakeOutcome> {
    const written = await this.conditional("take", () =>
      this.client.send(new UpdateItemCommand({ ...takeUpdate(this.region, item), TableName: this.table, ReturnValues: "UPDATED_NEW" })),
    );
    return written.ok
      ? { ok: true, slices: [withTaken(item, written.out.Attributes ?? {})] }
      : { ok: false, actual: [written.item ? itemToSlice(written.item) : null] };
  }

  async rewriteSlice(key: string, next: (frozen: StoredSlice) => StoredSlice, freezeUntilUs: bigint): Promise<StoredSlice | undefined> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const current = await this.getSlice(key);
      if (!current) return undefined;
      if (current.frozenUntilUs !== undefined) {
        // Someone else holds it: wait for their write (or cancel a dead holder's freeze).
        await new Promise((r) => setTimeout(r, 5));
        if (attempt >= 4) await this.cancelFreeze(key, current.version);
        continue;
      }
      const freeze = await this.conditional("config", () =>
        this.client.send(
          new UpdateItemCommand({ ...freezeUpdate(key, this.region, current.version, freezeUntilUs), TableName: this.table }),
        ),
      );
      if (!freeze.ok) continue; // a concurrent rewrite won; start over
      const frozen = itemToSlice(freeze.out.Attributes as Item);
      const desired: StoredSlice = { ...next(frozen), version: frozen.version + 1, frozenUntilUs: undefined };
      const rewritten = await this.conditional("config", () =>
        this.client.send(new UpdateItemCommand({ ...rewriteUpdate(desired, frozen.version, freezeUntilUs), TableName: this.table })),
      );
      if (rewritten.ok) return itemToSlice(rewritten.out.Attributes as Item);
      // Our freeze was cancelled: start over.
    }
    throw new StoreUnavailableError("store.contended", `could not rewrite bucket "${key}": too much contention`);
  }

  async adjustSlice(
    key: string,
    plan: AdjustPlan,
    counters: Pick<StoredSlice, "gives" | "takes" | "evicted">,
    writer: GeometryWriter,
  ): Promise<{ ok: boolean; row: StoredSlice | null }> {
    const written = await this.conditional(writer, () =>
      this.client.send(new UpdateItemCommand({ ...adjustUpdate(key, this.region, plan, counters, writer), TableName: this.table })),
    );
    return written.ok
      ? { ok: true, row: itemToSlice(written.out.Attributes as Item) }
      : { ok: false, row: written.item ? itemToSlice(written.item) : null };
  }

  async cancelFreeze(key: string, version: number): Promise<void> {
    // A failed condition: the freeze is already gone (released, or another version).
    await this.conditional("unfreeze", () =>
      this.client.send(new UpdateItemCommand({ ...cancelFreezeUpdate(key, this.region, version), TableName: this.table })),
    );
  }

  async scanAll(): Promise<{ slices: StoredSlice[]; configs: BucketConfig[] }> {
    const slices: StoredSlice[] = [];
    const configs: BucketConfig[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.scanPage(cursor);
      slices.push(...page.slices);
      configs.push(...page.configs);
      cursor = page.cursor;
    } while (cursor !== undefined);
    return { slices, configs };
  }

  async scanPage(cursor: string | undefined, limit?: number): Promise<ScanPage> {
    const start =
      cursor === undefined ? undefined : (JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as Record<string, AttributeValue>);
    const out = await this.send("scan", true, () =>
      this.client.send(
        new ScanCommand({
          TableName: this.table,
          ConsistentRead: true,
          ...(limit === undefined ? {} : { Limit: limit }),
          FilterExpression: "begins_with(sk, :slice) OR sk = :config OR begins_with(sk, :forecast)",
          ExpressionAttributeValues: { ":slice": { S: SLICE_PREFIX }, ":config": { S: CONFIG_SK }, ":forecast": { S: FORECAST_PREFIX } },
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      ),
    );
    const page = { slices: [] as StoredSlice[], configs: [] as BucketConfig[], forecasts: [] as Forecast[] };
    for (const item of out.Items ?? []) {
      const sk = item.sk?.S ?? "";
      if (sk === CONFIG_SK) page.configs.push(itemToConfig(item));
      else if (sk.startsWith(FORECAST_PREFIX)) page.forecasts.push(itemToForecast(item));
      else page.slices.push(itemToSlice(item));
    }
    const next = out.LastEvaluatedKey ? Buffer.from(JSON.stringify(out.LastEvaluatedKey), "utf8").toString("base64url") : undefined;
    return { ...page, cursor: next };
  }

  async claimBucket(rule: string, max: number): Promise<number | false> {
    const claimed = await this.conditional("cap", () =>
      this.client.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: bucketCountKey(rule, this.region),
          UpdateExpression: "ADD n :one, c :one",
          ConditionExpression: "attribute_not_exists(n) OR n < :max",
          ExpressionAttributeValues: { ":one": { N: "1" }, ":max": { N: String(max) } },
          ReturnValues: "UPDATED_NEW",
        }),
      ),
    );
    return claimed.ok ? Number(claimed.out.Attributes?.c?.N ?? "0") : false;
  }

  async bucketClaims(): Promise<Map<string, number>> {
    const prefix = bucketCountPrefix(this.region);
    const existing = await this.send("cap", true, () =>
      this.client.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: "pk = :pk AND begins_with(sk, :prefix)",
          ExpressionAttributeValues: { ":pk": { S: BUCKET_COUNT_PK }, ":prefix": { S: prefix } },
          ConsistentRead: true,
        }),
      ),
    );
    return new Map((existing.Items ?? []).map((item) => [(item.sk?.S ?? "").slice(prefix.length), Number(item.c?.N ?? 0)]));
  }

  async setBucketCounts(found: ReadonlyMap<string, number>, claimsAtStart: ReadonlyMap<string, number>): Promise<void> {
    // Rules with a counter but no live bucket any more go back to the claims made since the pass began.
    const rules = new Set([...found.keys(), ...(await this.bucketClaims()).keys()]);
    for (const rule of rules) {
      // n := found + (claims now − claims at the start), in one atomic update (never an overwrite of a newer claim).
      const delta = (found.get(rule) ?? 0) - (claimsAtStart.get(rule) ?? 0);
      await this.send("cap", true, () =>
        this.client.send(
          new UpdateItemCommand({
            TableName: this.table,
            Key: bucketCountKey(rule, this.region),
            UpdateExpression: "SET n = if_not_exists(c, :zero) + :delta",
            ExpressionAttributeValues: { ":zero": { N: "0" }, ":delta": { N: String(delta) } },
          }),
        ),
      );
    }
  }

  async getCheckpoint(job: string): Promise<string | undefined> {
    const out = await this.send("checkpoint", true, () =>
      this.client.send(new GetItemCommand({ TableName: this.table, Key: checkpointKey(job, this.region), ConsistentRead: true })),
    );
    return out.Item?.cur?.S;
  }

  async putCheckpoint(job: string, cursor: string | undefined): Promise<void> {
    const key = checkpointKey(job, this.region);
    await this.send("checkpoint", true, async () => {
      if (cursor === undefined) await this.client.send(new DeleteItemCommand({ TableName: this.table, Key: key }));
      else await this.client.send(new PutItemCommand({ TableName: this.table, Item: { ...key, cur: { S: cursor } } }));
    });
  }

  async querySlices(key: string): Promise<StoredSlice[]> {
    const out = await this.send("query", true, () =>
      this.client.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: "pk = :pk AND begins_with(sk, :prefix)",
          ExpressionAttributeValues: { ":pk": { S: key }, ":prefix": { S: SLICE_PREFIX } },
          ConsistentRead: true,
        }),
      ),
    );
    return (out.Items ?? []).map((item) => itemToSlice(item));
  }

  async recordDenied(key: string, amount: bigint, nowUs: bigint): Promise<void> {
    // A failed condition: the row is gone (nothing to record demand on).
    await this.conditional("denied", () =>
      this.client.send(new UpdateItemCommand({ ...deniedUpdate(key, this.region, amount, nowUs), TableName: this.table })),
    );
  }

  async putHeartbeat(nowUs: bigint): Promise<void> {
    await this.send("heartbeat", true, () =>
      this.client.send(
        new PutItemCommand({
          TableName: this.table,
          Item: { pk: { S: HEARTBEAT_PK }, sk: { S: this.region }, reg: { S: this.region }, hb: { N: nowUs.toString() } },
        }),
      ),
    );
  }

  async heartbeats(): Promise<Map<string, bigint>> {
    const out = await this.send("heartbeat", true, () =>
      this.client.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: "pk = :pk",
          ExpressionAttributeValues: { ":pk": { S: HEARTBEAT_PK } },
        }),
      ),
    );
    return new Map((out.Items ?? []).map((i) => [i.sk?.S ?? "", BigInt(i.hb?.N ?? "0")]));
  }

  async deleteSlice(key: string): Promise<void> {
    await this.send("delete", true, () =>
      this.client.send(new DeleteItemCommand({ TableName: this.table, Key: sliceKey(key, this.region) })),
    );
  }

  async getConfig(key: string): Promise<BucketConfig | undefined> {
    const out = await this.send("config", true, () =>
      this.client.send(new GetItemCommand({ TableName: this.table, Key: { pk: { S: key }, sk: { S: CONFIG_SK } }, ConsistentRead: true })),
    );
    return out.Item ? itemToConfig(out.Item) : undefined;
  }

  async putConfig(config: BucketConfig, expectedVersion: number): Promise<"ok" | "conflict"> {
    const written = await this.conditional("config", () =>
      this.client.send(
        new PutItemCommand({
          TableName: this.table,
          Item: configToItem(config),
          ...(expectedVersion === 0
            ? { ConditionExpression: "attribute_not_exists(pk)" }
            : { ConditionExpression: "ver = :v", ExpressionAttributeValues: { ":v": { N: String(expectedVersion) } } }),
        }),
      ),
    );
    return written.ok ? "ok" : "conflict";
  }

  async putForecast(forecast: Forecast): Promise<void> {
    await this.send("forecast", true, () =>
      this.client.send(new PutItemCommand({ TableName: this.table, Item: forecastToItem(forecast) })),
    );
  }

  async forecasts(key: string): Promise<Forecast[]> {
    const out = await this.send("forecast", true, () =>
      this.client.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: "pk = :pk AND begins_with(sk, :prefix)",
          ExpressionAttributeValues: { ":pk": { S: key }, ":prefix": { S: FORECAST_PREFIX } },
        }),
      ),
    );
    return (out.Items ?? []).map((i) => itemToForecast(i));
  }

  async putInvite(invite: Invite): Promise<void> {
    // The giver is always this region: a store never writes another region's invite.
    const item = inviteToItem({ ...invite, giver: this.region }, Date.now());
    await this.send("invite", true, () => this.client.send(new PutItemCommand({ TableName: this.table, Item: item })));
  }

  async getInvite(key: string, receiver: string): Promise<Invite | undefined> {
    const out = await this.send("invite", true, () =>
      this.client.send(new GetItemCommand({ TableName: this.table, Key: inviteKey(key, this.region, receiver), ConsistentRead: true })),
    );
    return out.Item ? itemToInvite(out.Item) : undefined;
  }

  async appendHistory(entry: HistoryEntry): Promise<void> {
    await this.send("history", false, () => this.client.send(new PutItemCommand({ TableName: this.table, Item: historyToItem(entry) })));
  }

  async history(key: string): Promise<HistoryEntry[]> {
    const out = await this.send("history", true, () =>
      this.client.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: "pk = :pk AND begins_with(sk, :prefix)",
          ExpressionAttributeValues: { ":pk": { S: key }, ":prefix": { S: HISTORY_PREFIX } },
        }),
      ),
    );
    return (out.Items ?? []).map((i) => itemToHistory(i));
  }

  async deleteConfig(key: string): Promise<void> {
    await this.send("config", true, () =>
      this.client.send(new DeleteItemCommand({ TableName: this.table, Key: { pk: { S: key }, sk: { S: CONFIG_SK } } })),
    );
  }
}

/**
 * The row after a successful take, from the row it was planned on and the attributes the write
 * returned (`UPDATED_NEW`; none from a transaction). The version held, so the geometry is the
 * planned row's; without a returned mark, the planned one is a lower bound of the real mark
 * (other instances' takes can only have raised it), so the level it shows is an upper bound.
 */
function withTaken(item: TakeItem, attributes: Item): StoredSlice {
  const { base, plan } = item;
  const planned = applyTake(base, plan) ?? base;
  const get = (name: string) => (attributes[name]?.N === undefined ? undefined : BigInt(attributes[name].N));
  return {
    ...base,
    mark: get("x") ?? planned.mark,
    consumed: get("used") ?? base.consumed + plan.amount,
    requested: (get("used") ?? base.consumed + plan.amount) + base.denied,
    heartbeatUs: item.nowUs,
  };
}

function isClientFault(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as { $fault?: string }).$fault === "client";
}
