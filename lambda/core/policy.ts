/**
 * The deciding policy of `POST /rate`, as one pure step: from what a decision knows of its
 * buckets' slices (cached, or returned by a failed write), it says what to do next. The use
 * case around it (`app/limiter.ts`) only performs the step's I/O and asks again.
 *
 * **The instant is fixed.** Every step of one decision plans at the same instant `t`
 * (ARCHITECTURE.md §8). Every applied take is then the GCRA update
 * `mark := max(mark, clock(t)) + n`, admitted only if `mark − clock(t) ≤ cap − n`, and marks
 * only grow, so the admitted total over any interval stays within the exact bound. It also
 * bounds the retries: a failed "full" write (`mark = clock(t) + n` if `mark < clock(t)`) lost to
 * a concurrent take, which leaves `mark ≥ clock(t)`; the next plan, at the same `t`, is the
 * commuting increment, which fails only on a true shortage (a denial) or a changed version.
 * Takes racing takes therefore decide in at most two writes; each background write that changes
 * the slice's geometry while a decision is in flight can add at most two more (it restarts the
 * argument on the row it returns).
 *
 * Pure: no I/O, no clock.
 */
import { leaseExtra } from "./lease.js";
import { level, planTake, type SliceState, sliceCapacity, type TakePlan } from "./slice.js";
import { TOKEN } from "./units.js";

/** What the policy sees of one bucket. */
export interface PolicyRow {
  readonly key: string;
  /** The slice as last seen (cached, read, or returned by a failed write). */
  readonly slice: SliceState;
  /** Whole-bucket capacity, whole tokens. */
  readonly capacity: bigint;
  /** How old this copy is, µs (0: the store returned it during this decision). */
  readonly ageUs: bigint;
  /** Whether the store returned this copy during this decision (a read, or a failed write). */
  readonly confirmed: boolean;
  /** Set while an admin rewrite holds the row (wall-clock µs). */
  readonly frozenUntilUs?: bigint | undefined;
  /**
   * aT this instance's other decisions are taking from the row right now (writes in flight). A
   * copy that cannot cover them and this request denies without a write: when a borrow lands,
   * the requests that waited for it do not all race for the few tokens it brought. @default 0
   */
  readonly pending?: bigint | undefined;
}

/** One step's input. */
export interface PolicyInput {
  readonly rows: readonly PolicyRow[];
  /** aT to take from every row (0: only read). */
  readonly amount: bigint;
  /** The decision's instant, µs: the same for every step of one decision. */
  readonly instantUs: bigint;
  /** The wall clock now, µs (only for freezes, which expire in real time). */
  readonly wallUs: bigint;
  /** A copy younger than this that shows too few tokens denies without a write, µs. */
  readonly denyCacheUs: bigint;
  /** Take writes this decision has made so far. */
  readonly writes: number;
  /** Take writes allowed per decision; past them the decision gives up (a store fault). */
  readonly maxWrites: number;
  /** Keys that may borrow now (borrow on, no borrow yet in this decision, not backing off). */
  readonly borrowable: ReadonlySet<string>;
  /**
   * aT this instance expects to need from the one row over a lease's life: a one-row decision's
   * first take may lease that much extra (`core/lease.ts`). Absent or 0: no lease.
   */
  readonly leaseExpected?: bigint | undefined;
}

/** One bucket's verdict in a denial. */
export type RowVerdict = "allowed" | "insufficient" | "exceeds_capacity";

/** What to do next. */
export type Step =
  /** An admin rewrite holds a row: wait for it, then ask again. */
  | { readonly kind: "wait"; readonly key: string; readonly untilUs: bigint }
  /** A freeze outlived its time (the rewriter died): cancel it, then ask again. */
  | { readonly kind: "unfreeze"; readonly key: string; readonly version: number }
  /** Re-read these rows from the store (the cached copies cannot be trusted for this answer). */
  | { readonly kind: "confirm"; readonly keys: readonly string[] }
  /** A request for 0 tokens: read the rows and answer allowed. */
  | { readonly kind: "read" }
  /** These rows are dry: borrow for them, then ask again. */
  | { readonly kind: "borrow"; readonly keys: readonly string[] }
  /** Write these takes (one per row, all or nothing); `lease`: aT of the one plan beyond the request. */
  | { readonly kind: "take"; readonly plans: readonly TakePlan[]; readonly lease: bigint }
  /** Deny: the verdict of every row. */
  | { readonly kind: "deny"; readonly verdicts: readonly RowVerdict[] }
  /** The write budget is spent (only a store that keeps failing writes gets here). */
  | { readonly kind: "give-up" };

/**
 * The next step of a decision.
 *
 * @example
 * const step = nextStep({ rows, amount: TOKEN, instantUs: t, wallUs: t, denyCacheUs: 100_000n,
 *   writes: 0, maxWrites: 6, borrowable: new Set() });
 * if (step.kind === "take") await store.take(...);
 */
export function nextStep(input: PolicyInput): Step {
  const { rows, amount, instantUs: t } = input;
  for (const r of rows) {
    if (r.frozenUntilUs === undefined) continue;
    if (input.wallUs < r.frozenUntilUs) return { kind: "wait", key: r.key, untilUs: r.frozenUntilUs };
    return { kind: "unfreeze", key: r.key, version: r.slice.version };
  }
  const oversize = rows.filter((r) => amount > r.capacity * TOKEN);
  if (oversize.length > 0) {
    // A cached copy may predate a capacity change: only a confirmed row may say "never".
    const unconfirmed = oversize.filter((r) => !r.confirmed).map((r) => r.key);
    if (unconfirmed.length > 0) return { kind: "confirm", keys: unconfirmed };
    return { kind: "deny", verdicts: rows.map((r) => (amount > r.capacity * TOKEN ? "exceeds_capacity" : verdictAt(r, amount, t))) };
  }
  if (amount === 0n) return { kind: "read" };
  // Dry: beyond the slice's capacity, or a copy the store gave this decision (or a cached one
  // younger than the deny cache) shows too few tokens. Takes only lower a level between two
  // reads, so such a copy is an upper bound: denying from it is safe.
  const dry = rows.filter(
    (r) => amount > sliceCapacity(r.slice) || (known(r, input) && level(r.slice, instantOf(r.slice, t)) - (r.pending ?? 0n) < amount),
  );
  if (dry.length > 0) {
    const borrow = dry.filter((r) => input.borrowable.has(r.key)).map((r) => r.key);
    if (borrow.length === dry.length) return { kind: "borrow", keys: borrow };
    return { kind: "deny", verdicts: rows.map((r) => verdictAt(r, amount, t)) };
  }
  if (input.writes >= input.maxWrites) return { kind: "give-up" };
  const only = rows.length === 1 ? rows[0] : undefined;
  if (only && input.writes === 0 && (input.leaseExpected ?? 0n) > 0n) {
    const at = instantOf(only.slice, t);
    const lease = leaseExtra(only.slice, amount, at, input.leaseExpected ?? 0n, only.pending);
    if (lease > 0n) return { kind: "take", plans: [planTake(only.slice, amount + lease, at)], lease };
  }
  return { kind: "take", plans: rows.map((r) => planTake(r.slice, amount, instantOf(r.slice, t))), lease: 0n };
}

/**
 * The instant a row is judged at: the decision's, or the row's epoch if a background write
 * re-based the row after it (the row's level before its epoch is its level at the epoch).
 */
export function instantOf(slice: SliceState, t: bigint): bigint {
  return slice.epochUs > t ? slice.epochUs : t;
}

/** Whether a copy is trusted to deny: the store returned it in this decision, or it is young enough. */
function known(r: PolicyRow, input: PolicyInput): boolean {
  return r.confirmed || r.ageUs <= input.denyCacheUs;
}

/** A row's verdict, judged exactly as the dry test judges it (pending takes count against it). */
function verdictAt(r: PolicyRow, amount: bigint, t: bigint): RowVerdict {
  return amount <= sliceCapacity(r.slice) && level(r.slice, instantOf(r.slice, t)) - (r.pending ?? 0n) >= amount
    ? "allowed"
    : "insufficient";
}
