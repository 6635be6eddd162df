/**
 * A region's slice of one token bucket, in "token-clock" form (a GCRA variant).
 *
 * The slice refills at `rate · rateShare` and holds at most `capacity · capShare`. Instead
 * of storing a level and a timestamp (which would need a read before every write), the
 * slice stores a **fill mark**: the value of its token clock at which it is full again.
 *
 * ```
 * clock(t) = rate · rateShare · (t − epoch)        (aT: µT/s · ppm · µs = 10⁻¹⁸ token, exact)
 * level(t) = sliceCapacity − max(0, mark − clock(t))
 * ```
 *
 * Taking `n` then needs no read: `mark += n` if `clock ≤ mark ≤ clock + cap − n`
 * (increments commute), or `mark = clock + n` if `mark < clock` (the slice is full).
 * A refill rate of 0 is simply a clock that never moves. The clock is an exact integer, so
 * admission is exact: a take succeeds iff an ideal token bucket holds the tokens.
 *
 * Pure: no I/O, no clock; `now` is always an argument.
 */
import { ceilDiv, floorDiv, MICRO, maxBig, minBig } from "./units.js";

/** Limits and shares that define a slice's geometry. */
export interface SliceParams {
  /** Whole-bucket capacity, in whole tokens (≥ 1). */
  readonly capacity: bigint;
  /** Whole-bucket refill rate, in micro-tokens per second (≥ 0). */
  readonly rate: bigint;
  /** This slice's share of the capacity, ppm (0 … 1 000 000). */
  readonly capShare: bigint;
  /** This slice's share of the refill rate, ppm (0 … 1 000 000). */
  readonly rateShare: bigint;
}

/** The full state of a slice, as stored. */
export interface SliceState extends SliceParams {
  /** Origin of the token clock, µs since the Unix epoch. */
  readonly epochUs: bigint;
  /** Fill mark on the token clock, aT. */
  readonly mark: bigint;
  /** Bumped by every change other than a take; takes are conditioned on it. */
  readonly version: number;
}

/** How tokens already in a slice carry over a change of limits (after bucket4j). */
export type InheritMode = "proportional" | "as-is" | "reset" | "additive";

/** aT per (token · ppm): `TOKEN / 10⁶`. */
const CAP_SCALE = MICRO * MICRO;

/** Slice capacity in aT: `capacity · capShare · 10¹²` (tokens × 10¹⁸ × ppm / 10⁶). */
export function sliceCapacity(s: SliceParams): bigint {
  return s.capacity * s.capShare * CAP_SCALE;
}

/** The slice's token clock at `nowUs`, in aT (exact). */
export function tokenClock(s: SliceState, nowUs: bigint): bigint {
  const elapsed = nowUs - s.epochUs;
  if (elapsed <= 0n) return 0n;
  return s.rate * s.rateShare * elapsed;
}

/** Tokens (aT) in the slice at `nowUs`. */
export function level(s: SliceState, nowUs: bigint): bigint {
  return sliceCapacity(s) - maxBig(0n, s.mark - tokenClock(s, nowUs));
}

/**
 * Microseconds from `nowUs` until the token clock reaches `target` (0 if it already has),
 * or `null` if it never will (no refill).
 */
export function timeUntilClock(s: SliceState, nowUs: bigint, target: bigint): bigint | null {
  if (tokenClock(s, nowUs) >= target) return 0n;
  const perSecond = s.rate * s.rateShare;
  if (perSecond === 0n) return null;
  // Smallest whole µs e with perSecond·e ≥ target (rounded up: a wait is never too short).
  const elapsed = ceilDiv(target, perSecond);
  return maxBig(0n, s.epochUs + elapsed - nowUs);
}

/** A new, full slice whose clock starts at `nowUs`. */
export function newSlice(params: SliceParams, nowUs: bigint): SliceState {
  return { ...params, epochUs: nowUs, mark: 0n, version: 1 };
}

/**
 * The write that takes `amount` aT from a slice, planned from a (possibly stale) cached state.
 * The store turns it into one conditional write whose condition re-checks it on the real row.
 */
export type TakePlan =
  /** `mark += amount` if `version = v AND mark BETWEEN low AND high`. */
  | { readonly kind: "increment"; readonly amount: bigint; readonly low: bigint; readonly high: bigint; readonly version: number }
  /** `mark = newMark` if `version = v AND mark < clock` (the slice is full). */
  | { readonly kind: "reset"; readonly amount: bigint; readonly clock: bigint; readonly newMark: bigint; readonly version: number };

/** Plans a take of `amount` aT (> 0) against the cached state `s` at `nowUs`. */
export function planTake(s: SliceState, amount: bigint, nowUs: bigint): TakePlan {
  const clock = tokenClock(s, nowUs);
  if (s.mark < clock) {
    return { kind: "reset", amount, clock, newMark: clock + amount, version: s.version };
  }
  return { kind: "increment", amount, low: clock, high: clock + sliceCapacity(s) - amount, version: s.version };
}

/**
 * Applies a plan to the real state exactly as the store's conditional write does:
 * the new state, or `undefined` when the condition fails.
 */
export function applyTake(s: SliceState, plan: TakePlan): SliceState | undefined {
  if (s.version !== plan.version) return undefined;
  if (plan.kind === "reset") {
    return s.mark < plan.clock ? { ...s, mark: plan.newMark } : undefined;
  }
  return s.mark >= plan.low && s.mark <= plan.high ? { ...s, mark: s.mark + plan.amount } : undefined;
}

/** Why a planned take did not apply, judged from the row as it really is. */
export type TakeFailure =
  /** The slice truly holds fewer than `amount` aT now. */
  | { readonly kind: "insufficient"; readonly retryAfterUs: bigint | null }
  /** The cached state was stale (other version, or the other write form is needed): replan. */
  | { readonly kind: "stale" };

/** Judges a failed take from the real row `actual`. */
export function judgeFailure(actual: SliceState, amount: bigint, nowUs: bigint): TakeFailure {
  if (level(actual, nowUs) < amount) {
    return { kind: "insufficient", retryAfterUs: retryAfter(actual, amount, nowUs) };
  }
  return { kind: "stale" };
}

/** µs until the slice holds `amount` aT, or `null` if it never will (no refill, or above capacity). */
export function retryAfter(s: SliceState, amount: bigint, nowUs: bigint): bigint | null {
  const cap = sliceCapacity(s);
  if (amount > cap) return null;
  // level ≥ amount  ⇔  mark − clock ≤ cap − amount  ⇔  clock ≥ mark − cap + amount.
  return timeUntilClock(s, nowUs, s.mark - cap + amount);
}

/** µs until the slice is full again, or `null` if it never will be. */
export function resetAfter(s: SliceState, nowUs: bigint): bigint | null {
  return timeUntilClock(s, nowUs, s.mark);
}

/**
 * Re-bases a slice onto new limits/shares at `nowUs`, carrying its tokens over by `inherit`.
 * The level is computed at the *old* parameters first (refill at the old share before any
 * change), the clock restarts at `nowUs`, and the version is bumped.
 *
 * - `proportional`: keep the same fraction of the (new) capacity, rounded down.
 * - `as-is`: keep the same number of tokens, capped at the new capacity.
 * - `reset`: start full at the new capacity.
 * - `additive`: keep the tokens and add any capacity increase (capped at the new capacity).
 */
export function rebase(s: SliceState, nowUs: bigint, next: SliceParams, inherit: InheritMode): SliceState {
  const oldCap = sliceCapacity(s);
  const newCap = sliceCapacity(next);
  const current = level(s, nowUs);
  let kept: bigint;
  switch (inherit) {
    case "proportional":
      kept = oldCap === 0n ? 0n : floorDiv(current * newCap, oldCap);
      break;
    case "as-is":
      kept = current;
      break;
    case "reset":
      kept = newCap;
      break;
    case "additive":
      kept = current + maxBig(0n, newCap - oldCap);
      break;
  }
  kept = maxBig(0n, minBig(kept, newCap));
  return { ...next, epochUs: nowUs, mark: newCap - kept, version: s.version + 1 };
}

/**
 * A change of a slice's geometry (shares, limits, epoch) that moves its level by a known
 * amount `delta` (aT; + for tokens received, − for tokens handed over), as **one conditional
 * write that commutes with takes**: takes never change the version, so it cannot starve under
 * a hot key, and a take in flight pays at most one failed write.
 *
 * With the clock restarting at `nowUs` (new clock = 0), the new mark is `newCap − (level + delta)`:
 * - not full (`mark ≥ clock`): `mark' = mark + (newCap − cap − clock − delta)`, valid while
 *   `0 ≤ level + delta ≤ newCap`, i.e. `mark BETWEEN low AND high`;
 * - full (`mark < clock`): level = cap, so `mark' = newCap − cap − delta` (absolute).
 */
export type AdjustPlan = {
  readonly version: number;
  /** The new geometry (epoch = now, version + 1); `mark` is the value if the cached state is exact. */
  readonly next: SliceState;
  readonly clock: bigint;
} & (
  | { readonly kind: "add"; readonly add: bigint; readonly low: bigint; readonly high: bigint }
  | { readonly kind: "set"; readonly mark: bigint }
);

/**
 * Plans moving the slice's level by `delta` while switching to `params`, from a cached state.
 * `undefined` when the cached state already shows the change cannot fit (level + delta outside
 * [0, new capacity]).
 */
export function planAdjust(s: SliceState, nowUs: bigint, delta: bigint, params: SliceParams): AdjustPlan | undefined {
  const clock = tokenClock(s, nowUs);
  const cap = sliceCapacity(s);
  const newCap = sliceCapacity(params);
  const next: SliceState = { ...s, ...params, epochUs: nowUs, version: s.version + 1, mark: 0n };
  if (s.mark < clock) {
    const kept = cap + delta;
    if (kept < 0n || kept > newCap) return undefined;
    return { kind: "set", version: s.version, clock, mark: newCap - kept, next: { ...next, mark: newCap - kept } };
  }
  const low = maxBig(clock, clock + cap + delta - newCap);
  const high = clock + cap + delta;
  if (s.mark < low || s.mark > high) return undefined;
  const add = newCap - cap - clock - delta;
  return { kind: "add", version: s.version, clock, add, low, high, next: { ...next, mark: s.mark + add } };
}

/** Applies an adjust plan to the real state exactly as the store's conditional write does (`undefined`: the condition fails). */
export function applyAdjust(s: SliceState, plan: AdjustPlan): SliceState | undefined {
  if (s.version !== plan.version) return undefined;
  if (plan.kind === "set") return s.mark < plan.clock ? { ...plan.next, mark: plan.mark } : undefined;
  return s.mark >= plan.low && s.mark <= plan.high ? { ...plan.next, mark: s.mark + plan.add } : undefined;
}
