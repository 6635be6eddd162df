/**
 * A bucket's limits as users write them (whole tokens, tokens per second, seconds), their
 * schema, and their exact fixed-point form for the slice arithmetic.
 */
import { z } from "zod";
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

const refillRate = z
  .number({ error: "must be a number" })
  .min(0, { error: "must be ≥ 0" })
  .max(MAX_CAPACITY, { error: `must be ≤ ${MAX_CAPACITY}` })
  .refine((v) => toMillionths(v) !== undefined, { error: "must have at most 6 decimal places" });

/** Schema of the limit fields, shared by the rules file and the admin API. */
export const limitFields = {
  capacity: z
    .number({ error: "must be a number" })
    .int({ error: "must be a whole number of tokens" })
    .min(1, { error: "must be ≥ 1" })
    .max(MAX_CAPACITY, { error: `must be ≤ ${MAX_CAPACITY}` }),
  refillRate,
  ttl: z
    .number({ error: "must be a number of seconds" })
    .int({ error: "must be a whole number of seconds" })
    .min(1, { error: "must be ≥ 1" })
    .max(MAX_TTL_SECONDS, { error: `must be ≤ ${MAX_TTL_SECONDS}` })
    .optional(),
  onError: z.enum(["allow", "deny"], { error: 'must be "allow" or "deny"' }).default("deny"),
};

/** Whole-bucket slice parameters (one region holding the whole share). */
export function toSliceParams(limits: BucketLimits, capShare = WHOLE_SHARE, rateShare = WHOLE_SHARE): SliceParams {
  const rate = toMillionths(limits.refillRate);
  if (rate === undefined) throw new RangeError(`refillRate ${limits.refillRate} is not a fixed-point number`);
  return { capacity: BigInt(limits.capacity), rate, capShare, rateShare };
}
