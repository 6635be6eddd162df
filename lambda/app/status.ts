/** The `/status/{key}` use case: the bucket as this region sees it. */
import { NotFoundError } from "../core/errors.js";
import { assertValidKey } from "../core/keys.js";
import { level, resetAfter, sliceCapacity } from "../core/slice.js";
import { fromMillionths, TOKEN } from "../core/units.js";
import type { BucketStore } from "../ports/bucket-store.js";
import type { Clock } from "../ports/clock.js";
import { makeSlice } from "./limiter.js";

/** One region's part of a bucket. */
export interface RegionStatus {
  readonly region: string;
  /** Whole tokens in the region's slice (rounded down). */
  readonly tokens: number;
  /** Capacity share, as a fraction 0–1. */
  readonly share: number;
  readonly rateShare: number;
  readonly capacity: number;
}

/** A bucket's status. */
export interface BucketStatus {
  readonly key: string;
  readonly capacity: number;
  readonly refillRate: number;
  /** Whole tokens available world-wide (as far as this region knows), rounded down. */
  readonly tokens: number;
  readonly resetAfterMs: number | null;
  readonly source: "override" | "rule";
  readonly region: string;
  readonly regions: readonly RegionStatus[];
}

/** Reads the status of `key` without changing anything. @throws {NotFoundError} */
export async function bucketStatus(deps: { store: BucketStore; clock: Clock }, key: string): Promise<BucketStatus> {
  assertValidKey(key);
  const { store, clock } = deps;
  const now = clock.nowUs();
  let slice = await store.getSlice(key);
  if (!slice) {
    const config = await store.getConfig(key);
    if (!config) throw new NotFoundError("bucket.not_found", `no bucket "${key}"`);
    slice = makeSlice(key, store.region, config.limits, { kind: "override", version: config.version }, now);
  }
  const tokens = Number(level(slice, now) / TOKEN);
  const reset = resetAfter(slice, now);
  return {
    key,
    capacity: slice.limits.capacity,
    refillRate: slice.limits.refillRate,
    tokens,
    resetAfterMs: reset === null ? null : Number((reset + 999n) / 1000n),
    source: slice.source.kind,
    region: store.region,
    regions: [
      {
        region: slice.region,
        tokens,
        share: fromMillionths(slice.capShare),
        rateShare: fromMillionths(slice.rateShare),
        capacity: Number(sliceCapacity(slice) / TOKEN),
      },
    ],
  };
}
