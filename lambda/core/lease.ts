/**
 * Leases: on a hot key, one take may carry more than its request needs, and the instance hands
 * the extra tokens to its next requests from memory, without a write (ARCHITECTURE.md §8:
 * leases keep the bound when leased tokens are consumed from the slice when leased).
 *
 * - **Charged when leased.** The extra is part of the take's conditional write, at the take's
 *   instant, so the slice, its replicas and every bound argument see it as spent then. What
 *   an instance leases and does not hand out before the lease ends is lost (under-admission),
 *   never spent twice.
 * - **Only far from the boundary.** A lease is granted only while the slice stays at least half
 *   full after it, and never above an eighth of the slice: near the refill boundary every token
 *   goes through the store, exactly as without leases, and a lost lease costs at most that.
 * - **Sized to the instance's demand** over the lease's life, in whole tokens rounded down: a
 *   key nobody contends gets no lease (its demand over the life is under one token).
 * - **Short.** A lease is handed out for at most its life (100 ms by default) after its take:
 *   a leased token reaches its request at most that long after it was charged.
 * - **Returned when it ends unused**, by a refund write on the same version of the row (the
 *   same frame as the take): the row is then exactly as if the take had leased less, or still
 *   lower, never above full. On another version the refund is not tried (the leftover is lost).
 * - **Never on a bucket without refill**: a quota's lost token would be lost for good.
 *
 * Pure: no I/O, no clock.
 */
import { level, type SliceState, sliceCapacity, tokenClock } from "./slice.js";
import { maxBig, minBig, TOKEN } from "./units.js";

/** Tokens an instance holds for one key, charged to the slice at `takenUs`. */
export interface Lease {
  /** aT not yet handed out. */
  readonly left: bigint;
  /** Last instant (µs) at which they may be handed out. */
  readonly untilUs: bigint;
  /** The row's version the lease was taken on (a refund must find the same). */
  readonly version: number;
  /** A lower bound of the row's mark right after the lease's take (aT): what a refund may return is bounded by it. */
  readonly markAfter: bigint;
}

/** A refund of a lease's leftover: `mark −= amount` if the version is `version` and the row stays at most full. */
export interface RefundPlan {
  readonly amount: bigint;
  /** The slice's token clock at the refund's instant (aT): the mark may not drop below it. */
  readonly clock: bigint;
  readonly version: number;
}

/**
 * The extra aT a take of `amount` may lease on `slice` at `atUs`, given what this instance
 * expects to need over the lease's life (`expected`, aT). `pending` is this instance's takes
 * in flight on the row (the copy's level does not show them yet).
 */
export function leaseExtra(slice: SliceState, amount: bigint, atUs: bigint, expected: bigint, pending = 0n): bigint {
  if (slice.rate * slice.rateShare === 0n) return 0n;
  const cap = sliceCapacity(slice);
  // What may leave the slice beyond this request while it stays at least half full.
  const room = level(slice, atUs) - pending - amount - cap / 2n;
  const extra = minBig(minBig(expected, room), cap / 8n);
  // Whole tokens, rounded down (against admission: a lease never rounds up).
  return maxBig(0n, (extra / TOKEN) * TOKEN);
}

/**
 * Serves `amount` from a lease at `nowUs`: the lease left after it, or `undefined` when the
 * lease cannot (none, ended, or too few tokens left).
 */
export function serveFromLease(lease: Lease | undefined, amount: bigint, nowUs: bigint): Lease | undefined {
  if (!lease || amount <= 0n || nowUs > lease.untilUs || lease.left < amount) return undefined;
  return { ...lease, left: lease.left - amount };
}

/**
 * The refund of an ended lease's leftover on `slice` at `nowUs` (undefined: nothing to return,
 * or another version). Exact: the row after it is never above the row the same history would
 * have left with a smaller lease. That history's slice would have overflowed (and lost refill)
 * once its mark, `mark − leftover`, fell below the clock; marks only grow between the lease's
 * take and now, so returning at most `markAfter − clock(now)` keeps it from ever having done so.
 */
export function planRefund(slice: SliceState, lease: Lease, nowUs: bigint): RefundPlan | undefined {
  if (lease.left <= 0n || slice.version !== lease.version) return undefined;
  const clock = tokenClock(slice, nowUs);
  const amount = minBig(lease.left, minBig(lease.markAfter, slice.mark) - clock);
  return amount > 0n ? { amount, clock, version: slice.version } : undefined;
}

/** Applies a refund to the real row exactly as the store's conditional write does (undefined: it fails). */
export function applyRefund(s: SliceState, plan: RefundPlan): SliceState | undefined {
  if (s.version !== plan.version || s.mark - plan.amount < plan.clock) return undefined;
  return { ...s, mark: s.mark - plan.amount };
}

/** aT of a lease that ended unused by `nowUs` (0 while it may still be handed out). */
export function expiredLeft(lease: Lease | undefined, nowUs: bigint): bigint {
  return lease && nowUs > lease.untilUs ? lease.left : 0n;
}
