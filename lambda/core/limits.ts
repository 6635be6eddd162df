/**
 * A bucket's limits as users write them (whole tokens, tokens per second, seconds), their
 * schema, and their exact fixed-point form for the slice arithmetic.
 */
import * as z from "zod/mini";
import type { SliceParams } from "./slice.js";
import { toMillionths, WHOLE_SHARE } from "./units.js";

/** Largest capacity and refill rate accepted. */
export const MAX_CAPACITY = 1_000_000_000;
/** Longest ttl accepted: ten years, in seconds. */
export const MAX_TTL_SECONDS = 315_360_000;

/** What happens when the store cannot be reached: deny (fail closed, default) or allow (fail open). */
export type OnError = "allow" | "deny";

/** A bucket's limits. */
export interface BucketLimits {
  /** Whole tokens the bucket holds when full. */
  readonly capacity: number;
  /** Tokens added per second (up to 6 decimals; 0 = never refills). */
  readonly refillRate: number;
  /** Seconds a bucket may stay idle *after it is full again* before it is forgotten; absent = never. */
  readonly ttl?: number | undefined;
  /** Fail-open (`allow`) or fail-closed (`deny`) when the store is unavailable. */
  readonly onError: OnError;
}

/** A whole number in [min, max], with messages naming the unit (`tokens`, `seconds`). */
export function wholeNumber(min: number, max: number, unit?: string) {
  return z
    .number({ error: unit ? `must be a number of ${unit}` : "must be a number" })
    .check(
      z.refine(Number.isInteger, { error: unit ? `must be a whole number of ${unit}` : "must be a whole number" }),
      z.minimum(min, { error: `must be ≥ ${min}` }),
      z.maximum(max, { error: `must be ≤ ${max}` }),
    );
}

const refillRate = z.number({ error: "must be a number" }).check(
  z.minimum(0, { error: "must be ≥ 0" }),
  z.maximum(MAX_CAPACITY, { error: `must be ≤ ${MAX_CAPACITY}` }),
  z.refine((v: number) => toMillionths(v) !== undefined, { error: "must have at most 6 decimal places" }),
);

/** Schema of the limit fields, shared by the rules file and the admin API. */
export const limitFields = {
  capacity: wholeNumber(1, MAX_CAPACITY, "tokens"),
  refillRate,
  ttl: z.optional(wholeNumber(1, MAX_TTL_SECONDS, "seconds")),
  onError: z._default(z.enum(["allow", "deny"], { error: 'must be "allow" or "deny"' }), "deny"),
};

/** Whole-bucket slice parameters (one region holding the whole share). */
export function toSliceParams(limits: BucketLimits, capShare = WHOLE_SHARE, rateShare = WHOLE_SHARE): SliceParams {
  const rate = toMillionths(limits.refillRate);
  if (rate === undefined) throw new RangeError(`refillRate ${limits.refillRate} is not a fixed-point number`);
  return { capacity: BigInt(limits.capacity), rate, capShare, rateShare };
}

/** Bounds that automatic scaling (forecasts) may never cross; PUT/PATCH values must respect them too. */
export interface ScalingBounds {
  readonly minCapacity?: number | undefined;
  readonly maxCapacity?: number | undefined;
  readonly minRefillRate?: number | undefined;
  readonly maxRefillRate?: number | undefined;
}

/** Schema of the bounds fields. */
export const boundFields = {
  minCapacity: z.optional(limitFields.capacity),
  maxCapacity: z.optional(limitFields.capacity),
  minRefillRate: z.optional(refillRate),
  maxRefillRate: z.optional(refillRate),
};

/** The first way `limits` break `bounds`, as `field: message`, or undefined. */
export function boundsViolation(limits: Pick<BucketLimits, "capacity" | "refillRate">, b: ScalingBounds): string | undefined {
  if (b.minCapacity !== undefined && b.maxCapacity !== undefined && b.minCapacity > b.maxCapacity)
    return `minCapacity: ${b.minCapacity} is above maxCapacity ${b.maxCapacity}`;
  if (b.minRefillRate !== undefined && b.maxRefillRate !== undefined && b.minRefillRate > b.maxRefillRate)
    return `minRefillRate: ${b.minRefillRate} is above maxRefillRate ${b.maxRefillRate}`;
  if (b.minCapacity !== undefined && limits.capacity < b.minCapacity)
    return `capacity: ${limits.capacity} is below minCapacity ${b.minCapacity}`;
  if (b.maxCapacity !== undefined && limits.capacity > b.maxCapacity)
    return `capacity: ${limits.capacity} is above maxCapacity ${b.maxCapacity}`;
  if (b.minRefillRate !== undefined && limits.refillRate < b.minRefillRate)
    return `refillRate: ${limits.refillRate} is below minRefillRate ${b.minRefillRate}`;
  if (b.maxRefillRate !== undefined && limits.refillRate > b.maxRefillRate)
    return `refillRate: ${limits.refillRate} is above maxRefillRate ${b.maxRefillRate}`;
  return undefined;
}

/** Clamps a value into optional bounds. */
export function clamp(value: number, min: number | undefined, max: number | undefined): number {
  return Math.min(max ?? Number.POSITIVE_INFINITY, Math.max(min ?? Number.NEGATIVE_INFINITY, value));
}

/** The ttl of a rule that names none, seconds: every templated bucket is forgotten eventually. */
export const DEFAULT_RULE_TTL_SECONDS = 3600;

/**
 * The TTL attribute (epoch seconds) for a row written at `nowUs`: `ttl` seconds after the slice
 * could be full again (never before), or undefined when the bucket never expires.
 */
export function expiryOf(limits: BucketLimits, nowUs: bigint): number | undefined {
  if (limits.ttl === undefined) return undefined;
  const nowS = Number(nowUs / 1_000_000n) + 1;
  const fill = limits.refillRate > 0 ? Math.ceil(limits.capacity / limits.refillRate) : 0;
  return nowS + fill + limits.ttl;
}
