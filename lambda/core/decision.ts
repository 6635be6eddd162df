/**
 * Decisions are data: a denial is a value, never an exception.
 */
import { level, resetAfter, retryAfter, type SliceState, sliceCapacity } from "./slice.js";
import { TOKEN } from "./units.js";

/** Why a bucket denied. */
export type DenyReason = "insufficient" | "exceeds_capacity";

/** One bucket's verdict on a request. */
export interface BucketDecision {
  readonly key: string;
  /** The rule that produced the bucket (absent: an explicit bucket); names its RateLimit policy. */
  readonly rule?: string | undefined;
  readonly allowed: boolean;
  readonly reason?: DenyReason | undefined;
  /** Tokens requested. */
  readonly tokens: number;
  /** aT left in this region's slice after the decision. */
  readonly remaining: bigint;
  /** Whole-bucket capacity, tokens. */
  readonly capacity: number;
  /** Whole-bucket refill rate, tokens/s. */
  readonly refillRate: number;
  /** µs until the request could succeed (0 if allowed; `null`: never). */
  readonly retryAfterUs: bigint | null;
  /** µs until the slice is full again (`null`: never). */
  readonly resetAfterUs: bigint | null;
}

/** The verdict of every applicable bucket: allowed only if all allow. */
export interface RateDecision {
  readonly allowed: boolean;
  /** Most constraining first. */
  readonly buckets: readonly BucketDecision[];
  /** True when the store was unavailable and every bucket declared `onError: allow`. */
  readonly failOpen: boolean;
}

/**
 * When a denied request could succeed, µs: the sooner of this slice's own refill reaching
 * `amount` and the next borrow (`borrowAfterUs`, when peers can lend: a borrow can bring what
 * the slice cannot hold or refill). `null` only above the bucket's capacity (the reason says
 * so) or when neither refill nor any peer can ever bring the tokens (one region, no refill).
 */
export function retryHint(
  slice: SliceState,
  capacity: number,
  amount: bigint,
  nowUs: bigint,
  borrowAfterUs: bigint | undefined,
): bigint | null {
  if (amount > BigInt(capacity) * TOKEN) return null;
  const own = amount > sliceCapacity(slice) ? null : retryAfter(slice, amount, nowUs);
  if (borrowAfterUs === undefined) return own;
  const borrow = borrowAfterUs > 1000n ? borrowAfterUs : 1000n; // at least 1 ms: the borrow needs a round trip
  return own === null || borrow < own ? borrow : own;
}

/** Describes one slice at `nowUs` for a request of `tokens` (whole tokens). */
export function describe(
  key: string,
  slice: SliceState,
  limits: { capacity: number; refillRate: number },
  tokens: number,
  nowUs: bigint,
  verdict: { allowed: boolean; reason?: DenyReason },
  rule?: string,
  borrowAfterUs?: bigint,
): BucketDecision {
  const amount = BigInt(tokens) * TOKEN;
  return {
    key,
    ...(rule === undefined ? {} : { rule }),
    allowed: verdict.allowed,
    reason: verdict.reason,
    tokens,
    remaining: level(slice, nowUs),
    capacity: limits.capacity,
    refillRate: limits.refillRate,
    retryAfterUs: verdict.allowed ? 0n : retryHint(slice, limits.capacity, amount, nowUs, borrowAfterUs),
    resetAfterUs: resetAfter(slice, nowUs),
  };
}

const NEVER = 2n ** 127n;

/**
 * Orders bucket decisions most constraining first: denials before admissions, then the
 * longest wait, then the fewest tokens left relative to capacity.
 */
export function mostConstrainingFirst(decisions: readonly BucketDecision[]): BucketDecision[] {
  return [...decisions].sort((a, b) => {
    if (a.allowed !== b.allowed) return a.allowed ? 1 : -1;
    const wa = a.retryAfterUs ?? NEVER;
    const wb = b.retryAfterUs ?? NEVER;
    if (wa !== wb) return wa > wb ? -1 : 1;
    // remaining/capacity, compared exactly by cross-multiplication.
    const ra = a.remaining * BigInt(b.capacity);
    const rb = b.remaining * BigInt(a.capacity);
    return ra === rb ? 0 : ra < rb ? -1 : 1;
  });
}

/** A decision as JSON text (bigints as decimal strings), for idempotency records. */
export function encodeDecision(d: RateDecision): string {
  return JSON.stringify(d, (_k, v) => (typeof v === "bigint" ? `${v}n` : v));
}

/** The inverse of {@link encodeDecision}. */
export function decodeDecision(text: string): RateDecision {
  return JSON.parse(text, (_k, v) => (typeof v === "string" && /^-?\d+n$/.test(v) ? BigInt(v.slice(0, -1)) : v)) as RateDecision;
}
