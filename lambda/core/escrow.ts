/**
 * Escrowed slices: how share and tokens move between regions (ARCHITECTURE.md §2–§3).
 *
 * Every cross-region quantity is a per-writer monotone counter: a region records what it has
 * **given** to each peer, and what it has **taken** (merged) from each peer as a watermark. A
 * merge adds only the difference between a peer's `given` and our watermark, so a replicated
 * row applied twice, late or out of order changes nothing the second time (I4). Tokens move
 * only together with capacity share, and every change refills at the old shares first.
 *
 * Pure: no I/O, no clock.
 */
import { type AdjustPlan, level, planAdjust, type SliceState, sliceCapacity } from "./slice.js";
import { ceilDiv, floorDiv, maxBig, minBig, WHOLE_SHARE } from "./units.js";

/** Cumulative amounts moved one way between two regions. */
export interface Transfer {
  /** Capacity share, ppm. */
  readonly cap: bigint;
  /** Rate share, ppm. */
  readonly rate: bigint;
  /** Tokens, aT. */
  readonly tokens: bigint;
}

/** The nothing-moved transfer. */
export const NO_TRANSFER: Transfer = { cap: 0n, rate: 0n, tokens: 0n };

/** A slice with its escrow counters. */
export interface EscrowSlice extends SliceState {
  readonly region: string;
  /** Per peer: cumulative amounts this region has given it. Only this region writes them. */
  readonly gives: Readonly<Record<string, Transfer>>;
  /** Per peer: cumulative amounts merged from that peer's `gives[this region]` (watermarks). */
  readonly takes: Readonly<Record<string, Transfer>>;
}

const add = (a: Transfer, b: Transfer): Transfer => ({ cap: a.cap + b.cap, rate: a.rate + b.rate, tokens: a.tokens + b.tokens });
const pos = (a: bigint, b: bigint) => maxBig(0n, a - b);

/**
 * The initial split of a new bucket: shares proportional to `weights` (default equal), in
 * ppm, summing to exactly 1 000 000 (the remainder goes one ppm at a time to the first regions).
 * Every region computes the same split from the same configuration, with no coordination.
 */
export function initialShares(regions: readonly string[], weights?: Readonly<Record<string, number>>): Map<string, bigint> {
  if (regions.length === 0) throw new RangeError("at least one region is needed");
  const w = regions.map((r) => BigInt(Math.round((weights?.[r] ?? 1) * 1000)));
  if (w.some((x) => x < 0n)) throw new RangeError("region weights must be ≥ 0");
  const total = w.reduce((a, b) => a + b, 0n);
  if (total === 0n) throw new RangeError("region weights must not all be 0");
  const shares = w.map((x) => (x * WHOLE_SHARE) / total);
  let rest = WHOLE_SHARE - shares.reduce((a, b) => a + b, 0n);
  for (let i = 0; rest > 0n; i = (i + 1) % shares.length, rest--) shares[i] = (shares[i] as bigint) + 1n;
  return new Map(regions.map((r, i) => [r, shares[i] as bigint]));
}

/** Re-expresses a slice with new shares and level at `nowUs` (clock restarts, version bumps). */
function reshape<S extends EscrowSlice>(
  s: S,
  nowUs: bigint,
  capShare: bigint,
  rateShare: bigint,
  kept: bigint,
  patch: Partial<EscrowSlice>,
): S {
  const next = { ...s, capShare, rateShare };
  const cap = sliceCapacity(next);
  const clamped = maxBig(0n, minBig(kept, cap));
  return { ...next, ...patch, epochUs: nowUs, mark: cap - clamped, version: s.version + 1 };
}

/**
 * Gives `capShare`/`rateShare` ppm to `peer`, with the proportional part of the current tokens
 * (`⌊level·δcap/capShare⌋`), or `atLeast` aT when that is more (a lend sized to what the
 * borrower is short of), but never more than the level nor than the given capacity can hold;
 * the giver keeps the rest, capped at its new capacity. Refills at the old shares first.
 * Amounts are clamped to what the slice holds. Tokens only move: the giver's level drops by
 * exactly what travels.
 */
export function give<S extends EscrowSlice>(s: S, peer: string, capShare: bigint, rateShare: bigint, nowUs: bigint, atLeast = 0n): S {
  if (peer === s.region) throw new RangeError("a region cannot give to itself");
  const dCap = minBig(maxBig(0n, capShare), s.capShare);
  const dRate = minBig(maxBig(0n, rateShare), s.rateShare);
  if (dCap === 0n && dRate === 0n) return s;
  const current = level(s, nowUs);
  let handed = s.capShare === 0n ? 0n : floorDiv(current * dCap, s.capShare);
  // Asked for more than the proportional part: as much of it as the level and the capacity travelling hold.
  const asked = minBig(minBig(atLeast, current), sliceCapacity({ ...s, capShare: dCap }));
  if (asked > handed) handed = asked;
  const newCap = sliceCapacity({ ...s, capShare: s.capShare - dCap });
  if (current - handed > newCap) handed = current - newCap; // never keep more than the new capacity
  const gives = { ...s.gives, [peer]: add(s.gives[peer] ?? NO_TRANSFER, { cap: dCap, rate: dRate, tokens: handed }) };
  return reshape(s, nowUs, s.capShare - dCap, s.rateShare - dRate, current - handed, { gives });
}

/**
 * The capacity share whose {@link give} hands over at least `tokens` aT of the slice's current
 * level (all of it when the level is short), ppm. `⌈tokens·capShare/level⌉`, clamped.
 */
export function shareCarrying(s: SliceState & { capShare: bigint }, tokens: bigint, nowUs: bigint): bigint {
  const current = level(s, nowUs);
  if (tokens <= 0n || current <= 0n) return 0n;
  if (tokens >= current) return s.capShare;
  return minBig(s.capShare, ceilDiv(tokens * s.capShare, current));
}

/** What merging `given` (a peer's cumulative `gives[us]`) would add: the part above our watermark. */
export function pending(s: EscrowSlice, peer: string, given: Transfer): Transfer {
  const w = s.takes[peer] ?? NO_TRANSFER;
  return { cap: pos(given.cap, w.cap), rate: pos(given.rate, w.rate), tokens: pos(given.tokens, w.tokens) };
}

/** Whether a transfer moves nothing. */
export function isEmpty(t: Transfer): boolean {
  return t.cap === 0n && t.rate === 0n && t.tokens === 0n;
}

/**
 * Merges a peer's cumulative `gives[us]` into the slice: adds what lies above the watermark
 * and moves the watermark. Idempotent: an old, repeated or reordered `given` adds nothing.
 * Returns the slice unchanged (same object) when there is nothing to add.
 */
export function merge<S extends EscrowSlice>(s: S, peer: string, given: Transfer, nowUs: bigint): S {
  const d = pending(s, peer, given);
  if (isEmpty(d)) return s;
  const w = s.takes[peer] ?? NO_TRANSFER;
  const takes = {
    ...s.takes,
    [peer]: { cap: maxBig(w.cap, given.cap), rate: maxBig(w.rate, given.rate), tokens: maxBig(w.tokens, given.tokens) },
  };
  const current = level(s, nowUs); // refill at the old shares first
  // Tokens arrive with their capacity and never exceed it under *our* current limits: tokens
  // handed over before a capacity cut cannot fill room the cut took away.
  const credited = minBig(d.tokens, sliceCapacity({ ...s, capShare: d.cap }));
  return reshape(s, nowUs, s.capShare + d.cap, s.rateShare + d.rate, current + credited, { takes });
}

/** Share and tokens given but not yet taken, summed over every pair of `rows` (one row per region). */
export function inFlight(rows: readonly EscrowSlice[]): Transfer {
  let total = NO_TRANSFER;
  for (const from of rows) {
    for (const to of rows) {
      if (from.region === to.region) continue;
      const given = from.gives[to.region] ?? NO_TRANSFER;
      const taken = to.takes[from.region] ?? NO_TRANSFER;
      total = add(total, { cap: given.cap - taken.cap, rate: given.rate - taken.rate, tokens: given.tokens - taken.tokens });
    }
  }
  return total;
}

/** A broken invariant, for reports. */
export interface Violation {
  readonly invariant: "I1" | "I2" | "I4";
  readonly message: string;
}

/**
 * Checks I1 (each kind of share sums to exactly 1 000 000 with what is in flight), I2 (tokens,
 * with what is in flight, never exceed the capacity) and I4 (no watermark above what was
 * given) on one row per region, each region's level taken at `nowOf(region)`.
 */
export function checkInvariants(rows: readonly EscrowSlice[], capacity: bigint, nowOf: (region: string) => bigint): Violation[] {
  const out: Violation[] = [];
  const flight = inFlight(rows);
  // Tokens in flight count only up to the capacity travelling with them (what a merge credits).
  let flightTokens = 0n;
  for (const from of rows) {
    for (const to of rows) {
      if (from.region === to.region) continue;
      const given = from.gives[to.region] ?? NO_TRANSFER;
      const taken = to.takes[from.region] ?? NO_TRANSFER;
      flightTokens += minBig(
        pos(given.tokens, taken.tokens),
        sliceCapacity({ capacity, capShare: pos(given.cap, taken.cap), rate: 0n, rateShare: 0n }),
      );
    }
  }
  const capTotal = rows.reduce((a, r) => a + r.capShare, 0n) + flight.cap;
  const rateTotal = rows.reduce((a, r) => a + r.rateShare, 0n) + flight.rate;
  if (capTotal !== WHOLE_SHARE) out.push({ invariant: "I1", message: `capacity shares + in flight = ${capTotal} ppm, not ${WHOLE_SHARE}` });
  if (rateTotal !== WHOLE_SHARE) out.push({ invariant: "I1", message: `rate shares + in flight = ${rateTotal} ppm, not ${WHOLE_SHARE}` });
  const tokens = rows.reduce((a, r) => a + level(r, nowOf(r.region)), 0n) + flightTokens;
  const limit = capacity * 10n ** 18n;
  if (tokens > limit) out.push({ invariant: "I2", message: `tokens + in flight = ${tokens} aT, above the capacity ${limit} aT` });
  for (const from of rows) {
    for (const to of rows) {
      const given = from.gives[to.region] ?? NO_TRANSFER;
      const taken = to.takes[from.region] ?? NO_TRANSFER;
      if (from !== to && (taken.cap > given.cap || taken.rate > given.rate || taken.tokens > given.tokens)) {
        out.push({ invariant: "I4", message: `${to.region} has taken more from ${from.region} than it gave` });
      }
    }
  }
  return out;
}

/**
 * One commuting write for an escrow change computed on a cached row (`after` = merges and
 * gives applied to `before` at `nowUs`): the level moves by exactly what those operations
 * moved it, the geometry and counters become `after`'s. `undefined` if it cannot fit.
 */
export function escrowAdjust(before: EscrowSlice, after: EscrowSlice, nowUs: bigint): AdjustPlan | undefined {
  const delta = level(after, nowUs) - level(before, nowUs);
  return planAdjust(before, nowUs, delta, after);
}
