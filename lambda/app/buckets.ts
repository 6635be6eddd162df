/**
 * The admin use case behind `/buckets/{key}`: explicit bucket configurations that override
 * rules, applied to this region's slice at once (tokens carried over proportionally).
 */
import { ConflictError, NotFoundError } from "../core/errors.js";
import { assertValidKey } from "../core/keys.js";
import { type BucketLimits, toSliceParams } from "../core/limits.js";
import { rebase } from "../core/slice.js";
import type { BucketConfig, BucketStore, StoredSlice } from "../ports/bucket-store.js";
import type { Clock } from "../ports/clock.js";
import { FREEZE_US, makeSlice } from "./limiter.js";
import { singleRegion, type Topology } from "./topology.js";

/** A bucket as the admin API shows it. */
export interface BucketView extends BucketLimits {
  readonly key: string;
  /** `override`: set by PUT/PATCH; `rule`: produced by a rule of the rules file. */
  readonly source: "override" | "rule";
  readonly rule?: string | undefined;
  readonly version?: number | undefined;
  readonly updatedAt?: string | undefined;
  readonly updatedBy?: string | undefined;
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
  async put(key: string, limits: BucketLimits, actor: string): Promise<{ view: BucketView; created: boolean }> {
    assertValidKey(key);
    const existing = await this.store.getConfig(key);
    const view = await this.write(key, limits, existing?.version ?? 0, actor);
    return { view, created: existing === undefined };
  }

  /** Changes some limits of `key` (an override, or a rule-produced bucket). @throws {NotFoundError} */
  async patch(key: string, change: Partial<BucketLimits>, actor: string): Promise<BucketView> {
    assertValidKey(key);
    const existing = await this.store.getConfig(key);
    let base = existing?.limits;
    if (!base) {
      const slice = await this.store.getSlice(key);
      if (!slice) throw new NotFoundError("bucket.not_found", `no bucket "${key}"`);
      base = slice.limits;
    }
    const merged: BucketLimits = { ...base, ...stripUndefined(change) };
    return this.write(key, merged, existing?.version ?? 0, actor);
  }

  /** Deletes `key`'s configuration and this region's slice. @throws {NotFoundError} */
  async delete(key: string): Promise<void> {
    assertValidKey(key);
    const [config, slice] = await Promise.all([this.store.getConfig(key), this.store.getSlice(key)]);
    if (!config && !slice) throw new NotFoundError("bucket.not_found", `no bucket "${key}"`);
    await this.store.deleteConfig(key);
    await this.store.deleteSlice(key);
  }

  private async write(key: string, limits: BucketLimits, expectedVersion: number, actor: string): Promise<BucketView> {
    const config: BucketConfig = {
      key,
      limits,
      version: expectedVersion + 1,
      updatedAt: Number(this.clock.nowUs() / 1000n),
      updatedBy: actor,
      origin: this.store.region,
    };
    if ((await this.store.putConfig(config, expectedVersion)) === "conflict") {
      throw new ConflictError("bucket.conflict", `bucket "${key}" was changed concurrently; retry`);
    }
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
  const { store, clock } = deps;
  const now = clock.nowUs();
  const source = { kind: "override", version: config.version } as const;
  const rewritten = await store.rewriteSlice(
    config.key,
    (frozen) => ({
      ...frozen,
      ...rebase(frozen, now, toSliceParams(config.limits, frozen.capShare, frozen.rateShare), "proportional"),
      limits: config.limits,
      source,
      configAt: config.updatedAt,
    }),
    now + FREEZE_US,
  );
  return rewritten ?? (await store.createSlice(makeSlice(config.key, deps.topology, config.limits, source, now, config.updatedAt)));
}

function viewOf(config: BucketConfig): BucketView {
  return {
    key: config.key,
    ...config.limits,
    source: "override",
    version: config.version,
    updatedAt: new Date(config.updatedAt).toISOString(),
    updatedBy: config.updatedBy,
  };
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
