/**
 * The bucket store port: where a region keeps its slice rows and bucket configs.
 * Adapters: `adapters/dynamodb` (the product) and `adapters/memory` (tests, benchmarks).
 * Adapters translate every engine error into a domain result or a `StoreUnavailableError`.
 */

import type { EscrowSlice, Transfer } from "../core/escrow.js";
import type { Forecast } from "../core/forecast.js";
import type { RefundPlan } from "../core/lease.js";
import type { BucketLimits, ScalingBounds } from "../core/limits.js";
import type { AdjustPlan, InheritMode, TakePlan } from "../core/slice.js";

/** Where a slice's limits come from. */
export type LimitSource = { readonly kind: "rule"; readonly rule: string } | { readonly kind: "override"; readonly version: number };

/** A region's slice row of one bucket. */
export interface StoredSlice extends EscrowSlice {
  readonly key: string;
  readonly limits: BucketLimits;
  readonly source: LimitSource;
  /** When the applied config was written (ms), with `source.version` its identity. */
  readonly configAt?: number | undefined;
  /** Total aT this slice has admitted (monotone, but for a lease refund, which takes back what was never handed out). */
  readonly consumed: bigint;
  /** Total aT requested here, admitted or not (monotone as `consumed`): the demand signal. */
  readonly requested: bigint;
  /** Total aT denied here (monotone). */
  readonly denied: bigint;
  /** The writer's clock at its last write, µs (for ages and demand; never for admission). */
  readonly heartbeatUs: bigint;
  /** The writer's clock at its last denial, µs. */
  readonly lastDeniedUs?: bigint | undefined;
  /** Regions this row's region evicted (and, for its own region, who evicted it: a fence). */
  readonly evicted?: Readonly<Record<string, { readonly by: string; readonly cap: bigint; readonly rate: bigint }>> | undefined;
  /** Set while a rewrite holds the row: takes wait until then (µs), and may cancel it after. */
  readonly frozenUntilUs?: bigint | undefined;
  /** The writer that last changed the row's version (a {@link GeometryWriter}); takes never change it. */
  readonly writer?: string | undefined;
  /**
   * The number of the claim that made this row (a rule's bucket under `maxBuckets`: the rule's
   * claim counter `c` after its increment), so the reconciler's recount can tell the rows it finds
   * that were claimed before its pass read the claims from those it counts by their claims.
   * Absent on rows no claim made (a lender's or a repair's) and on rows made before it was kept.
   */
  readonly claim?: number | undefined;
}

/** The writers that change a slice's version (and so fail takes in flight), as recorded on the row. */
export type GeometryWriter = "merge" | "lend" | "borrow" | "collect" | "give" | "fence" | "reconcile" | "config" | "unfreeze";

/**
 * A donor give a region's merge pass planned but did not write: it waits in this region's
 * replica until its receiver collects it, and is written then, so that the share is in flight
 * for half a round trip instead of a round trip and a half (ARCHITECTURE.md §3, "direct
 * delivery"). One per bucket, giver and receiver; a newer one replaces it.
 */
export interface Invite {
  readonly key: string;
  /** The region that will give (the store's own region when written). */
  readonly giver: string;
  readonly receiver: string;
  /** Capacity share to give, ppm. */
  readonly cap: bigint;
  /** Rate share to give, ppm. */
  readonly rate: bigint;
  /** The giver's cumulative `gives[receiver]` when planned: the give is written only if it is still that. */
  readonly base: Transfer;
  /** The giver's shares when planned: the give is written only if the giver still holds at least these. */
  readonly heldCap: bigint;
  readonly heldRate: bigint;
  /** When planned, µs on the giver's clock (only the giver's own region compares it). */
  readonly atUs: bigint;
}

/** An explicit bucket configuration (`PUT /buckets/{key}`); it overrides any rule. */
export interface BucketConfig {
  readonly key: string;
  readonly limits: BucketLimits;
  /** Starts at 1, bumped by every PUT/PATCH. */
  readonly version: number;
  /** Milliseconds since the Unix epoch. */
  readonly updatedAt: number;
  readonly updatedBy: string;
  /** Region whose API wrote it (configs replicate; last writer wins). */
  readonly origin: string;
  /** How the tokens in the bucket carry over this version's change. @default proportional */
  readonly inherit?: InheritMode | undefined;
  /** Bounds automatic scaling never crosses. */
  readonly bounds?: ScalingBounds | undefined;
  /** Forecasts may lower the refill ahead of a forecast surge (predictive throttling). */
  readonly predictive?: boolean | undefined;
  /** Forecasts may raise the capacity and refill, up to the max bounds, for a forecast surge. */
  readonly forecastGrowth?: boolean | undefined;
}

/** One page of a scan (see {@link BucketStore.scanPage}). */
export interface ScanPage {
  readonly slices: StoredSlice[];
  readonly configs: BucketConfig[];
  readonly forecasts: Forecast[];
  /** Where the next page starts; absent at the end. */
  readonly cursor?: string | undefined;
}

/** One change in a bucket's audit trail. */
export interface HistoryEntry {
  readonly key: string;
  readonly version: number;
  /** ms since the Unix epoch. */
  readonly at: number;
  readonly by: string;
  readonly region: string;
  readonly inherit: InheritMode;
  /** The limits before (null: created). */
  readonly old: BucketLimits | null;
  readonly new: BucketLimits;
}

/** One planned take of a multi-bucket decision. */
export interface TakeItem {
  readonly key: string;
  readonly plan: TakePlan;
  /** The row the plan was made on (a successful take returns it updated, without a read). */
  readonly base: StoredSlice;
  /** The decision's instant, µs (recorded as the heartbeat). */
  readonly nowUs: bigint;
  /** TTL attribute (epoch seconds) to set with the take, if the bucket expires. */
  readonly expiresAt?: number | undefined;
}

/** A decision remembered for an idempotency key (ARCHITECTURE: charged once, replayed after). */
export interface IdempotencyRecord {
  readonly id: string;
  /** What the request asked (tokens and buckets): a reused key with other parameters is refused. */
  readonly fingerprint: string;
  /** The decision, encoded. */
  readonly decision: string;
  /** When the record stops counting, ms since the epoch. */
  readonly expiresAtMs: number;
}

/** Outcome of an all-or-nothing take. */
export type TakeOutcome =
  | { readonly ok: true; readonly slices: readonly StoredSlice[] }
  /** The idempotency record already existed: nothing was taken. */
  | { readonly ok: false; readonly duplicate: true; readonly actual: readonly (StoredSlice | null | undefined)[] }
  /** Nothing was taken. Per item: the row as it really was (`null`: it does not exist; `undefined`: its own condition held). */
  | { readonly ok: false; readonly actual: readonly (StoredSlice | null | undefined)[] };

/** Counts of requests sent to the engine, by operation. */
export type StoreStats = Record<string, number>;

/** The region-local bucket store. */
export interface BucketStore {
  /** This store's region. */
  readonly region: string;
  /** The slice row of `key` in this region (strongly consistent read). */
  getSlice(key: string): Promise<StoredSlice | undefined>;
  /** Creates the slice if absent; returns the row that exists afterwards (ours, or a racer's). */
  createSlice(slice: StoredSlice): Promise<StoredSlice>;
  /**
   * Applies every take or none: one conditional write (a transaction for several, or with an
   * idempotency record, which is written in the same transaction if it does not exist yet).
   */
  take(items: readonly TakeItem[], record?: IdempotencyRecord): Promise<TakeOutcome>;
  /**
   * Returns an ended lease's leftover to the slice (`core/lease.ts`): one conditional write that
   * lowers the mark if the row still has the plan's version and stays at most full. False when
   * the condition failed (nothing changed).
   */
  refund(key: string, plan: RefundPlan): Promise<boolean>;
  /** The record of an idempotency key, if any. */
  getIdempotency(id: string): Promise<IdempotencyRecord | undefined>;
  /** Writes a record unless one exists. */
  putIdempotency(record: IdempotencyRecord): Promise<"ok" | "exists">;
  /**
   * Rewrites a slice safely under concurrent takes: freezes it (bumps the version so in-flight
   * takes fail), computes `next` from the frozen row, writes it. Returns the new row, or
   * `undefined` if the slice does not exist.
   */
  rewriteSlice(key: string, next: (frozen: StoredSlice) => StoredSlice, freezeUntilUs: bigint): Promise<StoredSlice | undefined>;
  /**
   * Applies an escrow change (merges, gives) as one conditional write that commutes with takes.
   * `counters` are the new `gives`/`takes` maps (only this region writes them). Returns the new
   * row, or the row as it really is when the plan's condition failed (`null`: no row).
   */
  adjustSlice(
    key: string,
    plan: AdjustPlan,
    counters: Pick<StoredSlice, "gives" | "takes" | "evicted">,
    writer: GeometryWriter,
  ): Promise<{ ok: boolean; row: StoredSlice | null }>;
  /** Every slice row and config in this region's replica (the reconciler's snapshot). */
  scanAll(): Promise<{ slices: StoredSlice[]; configs: BucketConfig[] }>;
  /**
   * One page of the replica's slices, configs and forecasts, from `cursor` (undefined: the
   * start); the page's `cursor` continues it (absent: the end). A bucket's items are contiguous
   * but may straddle two pages. `limit` bounds the items a page reads (default: the engine's page).
   */
  scanPage(cursor: string | undefined, limit?: number): Promise<ScanPage>;
  /**
   * Counts one more live bucket of `rule` in this region if it has fewer than `max`: the claim's
   * number (every claim ever made, this one included), or false when the cap is reached (nothing
   * counted). The reconciler resets the counts to what it finds.
   */
  claimBucket(rule: string, max: number): Promise<number | false>;
  /** Every claim ever counted per rule in this region (monotone): a recount's starting point. */
  bucketClaims(): Promise<Map<string, number>>;
  /**
   * Sets this region's live-bucket counts per rule after a whole pass: `found` by the pass, plus
   * every claim made since `claimsAtStart` (read when the pass began), so a bucket created while
   * the pass ran is never forgotten (a concurrent recount that overwrote the counter let the cap
   * be exceeded: 9,090 buckets on a cap of 9,000 in `bench/cardinality.ts`). A bucket both
   * claimed and found during the pass counts twice until the next pass: over, never under.
   */
  setBucketCounts(found: ReadonlyMap<string, number>, claimsAtStart: ReadonlyMap<string, number>): Promise<void>;
  /** A scheduled job's resume point in this region (undefined: none). */
  getCheckpoint(job: string): Promise<string | undefined>;
  /** Saves (or, with undefined, clears) a scheduled job's resume point in this region. */
  putCheckpoint(job: string, cursor: string | undefined): Promise<void>;
  /** Lifts a freeze whose time ran out (the rewriter died): bumps the version so its write fails. */
  cancelFreeze(key: string, version: number): Promise<void>;
  /** Every region's slice row of `key` in this region's replica (own row fresh, peers' as replicated). */
  querySlices(key: string): Promise<StoredSlice[]>;
  /** Publishes denied demand (never blocks takes: no version condition). */
  recordDenied(key: string, amount: bigint, nowUs: bigint): Promise<void>;
  /** Writes this region's heartbeat. */
  putHeartbeat(nowUs: bigint): Promise<void>;
  /** Every region's last heartbeat in this replica, µs on that region's clock. */
  heartbeats(): Promise<Map<string, bigint>>;
  /** Deletes this region's slice row (absent is fine). */
  deleteSlice(key: string): Promise<void>;
  getConfig(key: string): Promise<BucketConfig | undefined>;
  /** Writes a config if the stored version is `expectedVersion` (0: must not exist). */
  putConfig(config: BucketConfig, expectedVersion: number): Promise<"ok" | "conflict">;
  deleteConfig(key: string): Promise<void>;
  /** Writes a forecast (one per bucket and region; a newer one replaces it). It replicates. */
  putForecast(forecast: Forecast): Promise<void>;
  /** The forecasts of a bucket in this replica. */
  forecasts(key: string): Promise<Forecast[]>;
  /** Writes this region's invite to `invite.receiver` for `invite.key` (replacing an older one); it expires by itself. */
  putInvite(invite: Invite): Promise<void>;
  /** This region's invite to `receiver` for `key` (strongly consistent), if any. */
  getInvite(key: string, receiver: string): Promise<Invite | undefined>;
  /** Appends to a bucket's audit trail. */
  appendHistory(entry: HistoryEntry): Promise<void>;
  /** A bucket's audit trail, oldest first. */
  history(key: string): Promise<HistoryEntry[]>;
  /** Requests sent so far, by operation (for benchmarks). */
  stats(): StoreStats;
}
