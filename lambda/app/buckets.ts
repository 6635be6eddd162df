/**
 * The admin use case behind `/buckets/{key}`: explicit bucket configurations that override
 * rules, applied to this region's slice at once (tokens carried over proportionally).
 */
import { ConflictError, NotFoundError, ValidationError } from "../core/errors.js";
import { assertValidKey } from "../core/keys.js";
import { type BucketLimits, boundsViolation, type ScalingBounds, toSliceParams } from "../core/limits.js";
import { type InheritMode, rebase } from "../core/slice.js";
import type { BucketConfig, BucketStore, HistoryEntry, StoredSlice } from "../ports/bucket-store.js";
import type { Clock } from "../ports/clock.js";
import { FREEZE_US, makeSlice } from "./new-row.js";
import { singleRegion, type Topology } from "./topology.js";

/** What PUT/PATCH may set besides the limits. */
export interface ConfigOptions extends ScalingBounds {
  /** How tokens already in the bucket carry over. @default proportional */
  readonly inherit?: InheritMode | undefined;
  /** Forecasts may lower the refill ahead of a surge. */
  readonly predictive?: boolean | undefined;
  /** Forecasts may raise the capacity and refill, up to `maxCapacity` / `maxRefillRate`, for a surge. */
  readonly forecastGrowth?: boolean | undefined;
}

/** A bucket as the admin API shows it. */
export interface BucketView extends BucketLimits, ScalingBounds {
  readonly key: string;
  /** `override`: set by PUT/PATCH; `rule`: produced by a rule of the rules file. */
  readonly source: "override" | "rule";
  readonly rule?: string | undefined;
  readonly version?: number | undefined;
  readonly updatedAt?: string | undefined;
  readonly updatedBy?: string | undefined;
  readonly inherit?: InheritMode | undefined;
  readonly predictive?: boolean | undefined;
  readonly forecastGrowth?: boolean | undefined;
}

/** Admin operations for one region. */
export class BucketAdmin {
  private readonly store: BucketStore;
  private readonly clock: Clock;
  private readonly topology: Topology;

  constructor(deps: { store: BucketStore; clock: Clock; topology?: Topology }) {
    this.store = deps.store;
    this.clock = deps.clock;
    this.topology = deps.topology ?? singleRegion(deps.store.region);
  }

  /** The effective configuration of `key`. @throws {NotFoundError} `bucket.not_found` */
  async get(key: string): Promise<BucketView> {
    assertValidKey(key);
    const config = await this.store.getConfig(key);
    if (config) return viewOf(config);
    const slice = await this.store.getSlice(key);
    if (slice?.source.kind === "rule") return { key, ...slice.limits, source: "rule", rule: slice.source.rule };
    throw new NotFoundError("bucket.not_found", `no bucket "${key}"`);
  }

  /** Creates or replaces `key`'s configuration. Returns the view and whether it was created. */
  async put(
    key: string,
    limits: BucketLimits,
    actor: string,
    options: ConfigOptions = {},
  ): Promise<{ view: BucketView; created: boolean }> {
    assertValidKey(key);
    const existing = await this.store.getConfig(key);
    const old = existing?.limits ?? (await this.store.getSlice(key))?.limits ?? null;
    const view = await this.write(key, limits, existing?.version ?? 0, actor, options, old);
    return { view, created: existing === undefined };
  }

  /** `key`'s audit trail, oldest first. @throws {NotFoundError} when there is none */
  async history(key: string): Promise<HistoryEntry[]> {
    assertValidKey(key);
    const entries = await this.store.history(key);
    if (entries.length === 0) throw new NotFoundError("bucket.not_found", `no history for bucket "${key}"`);
    return entries;
  }

  /** Changes some limits of `key` (an override, or a rule-produced bucket). @throws {NotFoundError} */
  async patch(key: string, change: Partial<BucketLimits> & ConfigOptions, actor: string): Promise<BucketView> {
    assertValidKey(key);
    const existing = await this.store.getConfig(key);
    let base = existing?.limits;
    if (!base) {
      const slice = await this.store.getSlice(key);
      if (!slice) throw new NotFoundError("bucket.not_found", `no bucket "${key}"`);
      base = slice.limits;
    }
    const { inherit, predictive, forecastGrowth, minCapacity, maxCapacity, minRefillRate, maxRefillRate, ...limitChange } = change;
    const merged: BucketLimits = { ...base, ...stripUndefined(limitChange) };
    const bounds = { ...(existing?.bounds ?? {}), ...stripUndefined({ minCapacity, maxCapacity, minRefillRate, maxRefillRate }) };
    return this.write(
      key,
      merged,
      existing?.version ?? 0,
      actor,
      { ...bounds, inherit, predictive: predictive ?? existing?.predictive, forecastGrowth: forecastGrowth ?? existing?.forecastGrowth },
      base,
    );
  }

  /** Deletes `key`'s configuration and this region's slice. @throws {NotFoundError} */
  async delete(key: string): Promise<void> {
    assertValidKey(key);
    const [config, slice] = await Promise.all([this.store.getConfig(key), this.store.getSlice(key)]);
    if (!config && !slice) throw new NotFoundError("bucket.not_found", `no bucket "${key}"`);
    await this.store.deleteConfig(key);
    await this.store.deleteSlice(key);
  }

  private async write(
    key: string,
    limits: BucketLimits,
    expectedVersion: number,
    actor: string,
    options: ConfigOptions,
    old: BucketLimits | null,
  ): Promise<BucketView> {
    const { inherit = "proportional", predictive, forecastGrowth, ...bounds } = options;
    const cleanBounds = stripUndefined(bounds) as ScalingBounds;
    const broken = boundsViolation(limits, cleanBounds);
    if (broken) throw new ValidationError("request.out_of_bounds", broken);
    if (predictive && forecastGrowth) {
      throw new ValidationError(
        "request.invalid_forecastGrowth",
        "forecastGrowth: a bucket either grows for a forecast surge or is throttled for it (predictive), not both",
      );
    }
    if (forecastGrowth && cleanBounds.maxCapacity === undefined && cleanBounds.maxRefillRate === undefined) {
      throw new ValidationError(
        "request.invalid_forecastGrowth",
        "forecastGrowth: set maxCapacity and/or maxRefillRate, the most a forecast may grow the bucket to",
      );
    }
    const config: BucketConfig = {
      key,
      limits,
      version: expectedVersion + 1,
      updatedAt: Number(this.clock.nowUs() / 1000n),
      updatedBy: actor,
      origin: this.store.region,
      inherit,
      bounds: Object.keys(cleanBounds).length > 0 ? cleanBounds : undefined,
      predictive,
      forecastGrowth,
    };
    if ((await this.store.putConfig(config, expectedVersion)) === "conflict") {
      throw new ConflictError("bucket.conflict", `bucket "${key}" was changed concurrently; retry`);
    }
    await this.store.appendHistory({
      key,
      version: config.version,
      at: config.updatedAt,
      by: actor,
      region: this.store.region,
      inherit,
      old,
      new: limits,
    });
    await this.apply(config);
    return viewOf(config);
  }

  /** Applies a config to this region's slice. */
  private async apply(config: BucketConfig): Promise<StoredSlice> {
    return applyConfig({ store: this.store, clock: this.clock, topology: this.topology }, config);
  }
}

/**
 * Applies a config to this region's slice: re-based in place (shares kept, tokens carried
 * over proportionally), or created with the initial share. Used by the admin API in the
 * region that took the change, and by the merge handler in the others.
 */
export async function applyConfig(
  deps: { store: BucketStore; clock: Clock; topology: Topology },
  config: BucketConfig,
): Promise<StoredSlice> {
  const now = deps.clock.nowUs();
  const source = { kind: "override", version: config.version } as const;
  const rewritten = await rebaseRow(deps.store, config.key, now, config.limits, config.inherit ?? "proportional", {
    source,
    configAt: config.updatedAt,
  });
  return rewritten ?? (await deps.store.createSlice(makeSlice(config.key, deps.topology, config.limits, source, now, config.updatedAt)));
}

/**
 * The frozen re-base of this region's row onto new limits at `now` (shares kept, tokens carried
 * over by `inherit`), with `patch` applied: the one rewrite behind a config and a rule change.
 */
function rebaseRow(
  store: BucketStore,
  key: string,
  now: bigint,
  limits: BucketLimits,
  inherit: InheritMode,
  patch: Partial<StoredSlice> = {},
): Promise<StoredSlice | undefined> {
  return store.rewriteSlice(
    key,
    (frozen) => ({
      ...frozen,
      ...rebase(frozen, now, toSliceParams(limits, frozen.capShare, frozen.rateShare), inherit),
      limits,
      ...patch,
    }),
    now + FREEZE_US,
  );
}

/** Whether two limits are the same (a rule bucket's row re-bases when its rule's differ). */
export function sameLimits(a: BucketLimits, b: BucketLimits): boolean {
  return a.capacity === b.capacity && a.refillRate === b.refillRate && a.ttl === b.ttl && a.onError === b.onError;
}

/**
 * Carries this region's row of a rule's bucket over to the rule's limits as this region's rules
 * file states them (the rules changed since the row was made, or the row's own word cannot be
 * trusted): the same frozen re-base as a config change, tokens kept in proportion. The row
 * as rewritten, or undefined when there is no row.
 */
export async function applyRule(
  deps: { store: BucketStore; clock: Clock },
  key: string,
  limits: BucketLimits,
): Promise<StoredSlice | undefined> {
  return rebaseRow(deps.store, key, deps.clock.nowUs(), limits, "proportional");
}

function viewOf(config: BucketConfig): BucketView {
  return {
    key: config.key,
    ...config.limits,
    ...(config.bounds ?? {}),
    ...(config.inherit ? { inherit: config.inherit } : {}),
    ...(config.predictive !== undefined ? { predictive: config.predictive } : {}),
    ...(config.forecastGrowth !== undefined ? { forecastGrowth: config.forecastGrowth } : {}),
    source: "override",
    version: config.version,
    updatedAt: new Date(config.updatedAt).toISOString(),
    updatedBy: config.updatedBy,
  };
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
