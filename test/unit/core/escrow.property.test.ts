/**
 * Escrow over random interleavings: takes in every region, gives between regions, replicated
 * rows delivered duplicated, reordered and late, clock offsets, config changes. I1, I2 and I4
 * are checked after every step and the global window bound over the whole run.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type Admission, worstOverAdmission } from "../../../lambda/core/accuracy.js";
import { checkInvariants, type EscrowSlice, escrowAdjust, give, initialShares, merge, NO_TRANSFER } from "../../../lambda/core/escrow.js";
import { applyAdjust, applyTake, judgeFailure, level, newSlice, planTake, rebase, sliceCapacity } from "../../../lambda/core/slice.js";
import { TOKEN } from "../../../lambda/core/units.js";

const T0 = 1_000_000_000n;
const REGIONS = ["a", "b", "c"];

type Op =
  | { kind: "take"; r: number; tokens: number }
  | { kind: "give"; r: number; to: number; cap: number; rate: number; atLeast: number }
  | { kind: "deliver"; pick: number; drop: boolean }
  | { kind: "wait"; us: number }
  | { kind: "config"; capacity: number; rate: number };

const op = (withConfig: boolean): fc.Arbitrary<Op> =>
  fc.oneof(
    { weight: 6, arbitrary: fc.record({ kind: fc.constant("take" as const), r: fc.nat(2), tokens: fc.integer({ min: 1, max: 8 }) }) },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant("give" as const),
        r: fc.nat(2),
        to: fc.nat(2),
        cap: fc.integer({ min: 0, max: 600_000 }),
        rate: fc.integer({ min: 0, max: 600_000 }),
        // Tokens a lend asks to carry beyond the proportional part (0: none), in tenths.
        atLeast: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 700 })),
      }),
    },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant("deliver" as const), pick: fc.nat(), drop: fc.boolean() }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant("wait" as const), us: fc.integer({ min: 0, max: 400_000 }) }) },
    {
      weight: withConfig ? 1 : 0,
      arbitrary: fc.record({
        kind: fc.constant("config" as const),
        capacity: fc.integer({ min: 1, max: 60 }),
        rate: fc.integer({ min: 0, max: 40 }),
      }),
    },
  );

interface Run {
  regions: number;
  capacity: number;
  rate: number; // tokens/s
  skews: number[]; // µs, per region
  ops: Op[];
}

const run = (withConfig: boolean) =>
  fc.record({
    regions: fc.integer({ min: 2, max: 3 }),
    capacity: fc.integer({ min: 1, max: 60 }),
    rate: fc.integer({ min: 0, max: 40 }),
    skews: fc.array(fc.integer({ min: -50_000, max: 50_000 }), { minLength: 3, maxLength: 3 }),
    ops: fc.array(op(withConfig), { minLength: 20, maxLength: 120 }),
  });

/** Simulates one run; returns the admissions (true time) and asserts the invariants at each step. */
function simulate(p: Run): { admissions: Admission[]; capacity: bigint; ratePerUs: bigint; configChanged: boolean } {
  const names = REGIONS.slice(0, p.regions);
  const split = initialShares(names);
  let capacity = BigInt(p.capacity);
  let rate = BigInt(p.rate) * 1_000_000n;
  let configChanged = false;
  let t = T0;
  const clock = (i: number) => t + BigInt(p.skews[i] ?? 0);
  const rows: EscrowSlice[] = names.map((region, i) => {
    const share = split.get(region) as bigint;
    return { ...newSlice({ capacity, rate, capShare: share, rateShare: share }, clock(i)), region, gives: {}, takes: {} };
  });
  // What each region's merge handler last read of its own row: escrow changes are computed on
  // it and applied to the real row as one commuting conditional write, like the product does.
  const caches: EscrowSlice[] = [...rows];
  const viaAdjust = (i: number, change: (s: EscrowSlice, now: bigint) => EscrowSlice) => {
    for (let attempt = 0; attempt < 3; attempt++) {
      const now = clock(i);
      const cached = caches[i] as EscrowSlice;
      const wanted = change(cached, now);
      if (wanted === cached) return;
      const plan = escrowAdjust(cached, wanted, now);
      const real = rows[i] as EscrowSlice;
      const applied = plan ? applyAdjust(real, plan) : undefined;
      if (plan && applied) {
        const before = level(real, now);
        const after = { ...real, ...applied, gives: wanted.gives, takes: wanted.takes };
        // The level moved by exactly the planned amount, within the new capacity.
        expect(level(after, now) - before).toBe(level(wanted, now) - level(cached, now));
        expect(level(after, now) >= 0n && level(after, now) <= sliceCapacity(after)).toBe(true);
        rows[i] = after;
        caches[i] = after;
        return;
      }
      caches[i] = real; // the failed write returned the real row
    }
    throw new Error("a fresh cache must always apply");
  };
  // The network: snapshots of rows in transit, each to one peer (delivered any number of times, in any order).
  const wire: { to: number; snapshot: EscrowSlice }[] = [];
  const admissions: Admission[] = [];
  const check = () => {
    const violations = checkInvariants(rows, capacity, (region) => clock(names.indexOf(region)));
    expect(violations).toEqual([]);
  };
  for (const o of p.ops) {
    if (o.kind === "wait") {
      t += BigInt(o.us);
    } else if (o.kind === "take") {
      const i = o.r % p.regions;
      const row = rows[i] as EscrowSlice;
      const amount = BigInt(o.tokens) * TOKEN;
      if (amount > sliceCapacity(row)) continue;
      const next = applyTake(row, planTake(row, amount, clock(i)));
      if (next) {
        rows[i] = { ...row, ...next };
        admissions.push({ atUs: t, amount });
      } else {
        expect(judgeFailure(row, amount, clock(i)).kind).toBe("insufficient");
      }
    } else if (o.kind === "give") {
      const i = o.r % p.regions;
      const j = o.to % p.regions;
      if (i === j) continue;
      viaAdjust(i, (s, now) => give(s, names[j] as string, BigInt(o.cap), BigInt(o.rate), now, (BigInt(o.atLeast) * TOKEN) / 10n));
      for (let k = 0; k < p.regions; k++) if (k !== i) wire.push({ to: k, snapshot: rows[i] as EscrowSlice });
    } else if (o.kind === "deliver") {
      if (wire.length === 0) continue;
      const idx = o.pick % wire.length;
      const msg = wire[idx] as { to: number; snapshot: EscrowSlice };
      if (o.drop) wire.splice(idx, 1); // otherwise it stays: a duplicate may come later
      const region = names[msg.to] as string;
      viaAdjust(msg.to, (s, now) => merge(s, msg.snapshot.region, msg.snapshot.gives[region] ?? NO_TRANSFER, now));
    } else {
      // A config change applied by every region at once (propagation is the store's concern).
      configChanged = true;
      capacity = BigInt(o.capacity);
      rate = BigInt(o.rate) * 1_000_000n;
      for (let i = 0; i < rows.length; i++) {
        const row = rows[i] as EscrowSlice;
        rows[i] = {
          ...row,
          ...rebase(row, clock(i), { capacity, rate, capShare: row.capShare, rateShare: row.rateShare }, "proportional"),
        };
      }
    }
    check();
  }
  // Deliver everything still in flight: the system converges to exactly the whole share.
  for (const msg of wire) {
    const me = rows[msg.to] as EscrowSlice;
    rows[msg.to] = merge(me, msg.snapshot.region, msg.snapshot.gives[me.region] ?? NO_TRANSFER, clock(msg.to));
  }
  expect(rows.reduce((a, r) => a + r.capShare, 0n)).toBe(1_000_000n);
  expect(rows.reduce((a, r) => a + r.rateShare, 0n)).toBe(1_000_000n);
  return { admissions, capacity, ratePerUs: rate * 1_000_000n, configChanged };
}

describe("escrowed slices", () => {
  it("hold I1, I2, I4 and the global window bound over 10,000 random runs", () => {
    fc.assert(
      fc.property(run(false), (p) => {
        const { admissions, capacity, ratePerUs } = simulate(p);
        admissions.sort((x, y) => (x.atUs < y.atUs ? -1 : x.atUs > y.atUs ? 1 : 0));
        expect(worstOverAdmission(admissions, capacity * TOKEN, ratePerUs)).toBeLessThanOrEqual(0n);
      }),
      { numRuns: 10_000 },
    );
  });

  it("hold I1, I2 and I4 through config changes", () => {
    fc.assert(
      fc.property(run(true), (p) => {
        simulate(p);
      }),
      { numRuns: 2_000 },
    );
  });

  it("merge is idempotent and order-free: any delivery sequence of the same gives ends in the same state", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 100_000 }), { minLength: 1, maxLength: 8 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 30 }),
        (amounts, order) => {
          let giver: EscrowSlice = {
            ...newSlice({ capacity: 10n, rate: 0n, capShare: 500_000n, rateShare: 500_000n }, T0),
            region: "a",
            gives: {},
            takes: {},
          };
          const snapshots: EscrowSlice[] = [];
          for (const a of amounts) {
            giver = give(giver, "b", BigInt(a), BigInt(a), T0);
            snapshots.push(giver);
          }
          const start: EscrowSlice = {
            ...newSlice({ capacity: 10n, rate: 0n, capShare: 500_000n, rateShare: 500_000n }, T0),
            region: "b",
            gives: {},
            takes: {},
          };
          let shuffled = start;
          for (const k of order)
            shuffled = merge(shuffled, "a", (snapshots[k % snapshots.length] as EscrowSlice).gives.b ?? NO_TRANSFER, T0);
          shuffled = merge(shuffled, "a", giver.gives.b ?? NO_TRANSFER, T0);
          const inOrder = merge(start, "a", giver.gives.b ?? NO_TRANSFER, T0);
          expect(shuffled.capShare).toBe(inOrder.capShare);
          expect(shuffled.rateShare).toBe(inOrder.rateShare);
          expect(shuffled.mark).toBe(inOrder.mark);
          expect(merge(inOrder, "a", giver.gives.b ?? NO_TRANSFER, T0)).toBe(inOrder); // nothing new: unchanged
        },
      ),
    );
  });

  it("a give hands at least what it is asked to carry, within the level and the capacity given, and only moves tokens", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1_000_000 }), // capShare held
        fc.integer({ min: 0, max: 1000 }), // level, per mille of the slice
        fc.integer({ min: 0, max: 1_000_000 }), // capShare given
        fc.integer({ min: 0, max: 200 }), // tokens asked, tenths
        (held, fill, given, asked) => {
          const capacity = 100n;
          const full: EscrowSlice = {
            ...newSlice({ capacity, rate: 5_000_000n, capShare: BigInt(held), rateShare: BigInt(held) }, T0),
            region: "a",
            gives: {},
            takes: {},
          };
          // Spend down to the level (a take at T0 of everything above it).
          const cap = sliceCapacity(full);
          const spend = cap - (cap * BigInt(fill)) / 1000n;
          const s = spend > 0n ? { ...full, ...(applyTake(full, planTake(full, spend, T0)) as object) } : full;
          const current = level(s, T0);
          const atLeast = (BigInt(asked) * TOKEN) / 10n;
          const after = give(s, "b", BigInt(given), 0n, T0, atLeast);
          const dCap = BigInt(Math.min(given, held));
          const handed = after.gives.b?.tokens ?? 0n;
          const proportional = (current * dCap) / BigInt(held);
          const room = sliceCapacity({ capacity, capShare: dCap, rate: 0n, rateShare: 0n });
          const want = [atLeast, current, room].reduce((x, y) => (x < y ? x : y));
          // At least the proportional part and what was asked (as far as level and capacity given allow)...
          expect(handed >= proportional && handed >= want).toBe(true);
          // ...never more than the level, nor than the giver's new capacity forces it to hand on,
          expect(handed <= current).toBe(true);
          // ...and the giver keeps exactly the rest: nothing is created or destroyed.
          expect(level(after, T0)).toBe(current - handed);
          expect(level(after, T0) <= sliceCapacity(after)).toBe(true);
          if (atLeast === 0n) expect(handed).toBe(give(s, "b", BigInt(given), 0n, T0).gives.b?.tokens ?? 0n);
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it("splits a new bucket evenly (or by weight) into exactly one whole share", () => {
    expect([...initialShares(["a", "b", "c"]).values()]).toEqual([333_334n, 333_333n, 333_333n]);
    expect([...initialShares(["a", "b"], { a: 3, b: 1 }).values()]).toEqual([750_000n, 250_000n]);
  });
});
