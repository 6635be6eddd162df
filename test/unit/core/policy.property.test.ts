/**
 * The deciding policy as a pure step: what it asks for is always justified by the rows it was
 * shown, and a take it plans on an exact row lands exactly when an ideal bucket holds the tokens.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { nextStep, type PolicyInput, type PolicyRow } from "../../../lambda/core/policy.js";
import { applyTake, level, newSlice, planTake, type SliceState, sliceCapacity } from "../../../lambda/core/slice.js";
import { TOKEN } from "../../../lambda/core/units.js";

const T0 = 1_700_000_000_000_000n;

/** A slice after some takes at increasing instants. */
const arbRow = fc
  .record({
    capacity: fc.integer({ min: 1, max: 20 }),
    rate: fc.constantFrom(0n, 1_000_000n, 5_000_000n, 1_000_000_000n),
    capShare: fc.constantFrom(1_000_000n, 500_000n, 10_000n, 0n),
    takes: fc.array(fc.record({ n: fc.integer({ min: 1, max: 5 }), dtUs: fc.integer({ min: 0, max: 500_000 }) }), { maxLength: 8 }),
    ageUs: fc.constantFrom(0n, 50_000n, 500_000n),
    confirmed: fc.boolean(),
    key: fc.constantFrom("a", "b", "c"),
    pendingTokens: fc.constantFrom(0, 0, 1, 3),
  })
  .map((r) => {
    let s: SliceState = newSlice({ capacity: BigInt(r.capacity), rate: r.rate, capShare: r.capShare, rateShare: r.capShare }, T0);
    let t = T0;
    for (const take of r.takes) {
      t += BigInt(take.dtUs);
      const next = applyTake(s, planTake(s, BigInt(take.n) * TOKEN, t));
      if (next) s = next;
    }
    const row: PolicyRow = {
      key: r.key,
      slice: s,
      capacity: BigInt(r.capacity),
      ageUs: r.ageUs,
      confirmed: r.confirmed,
      pending: BigInt(r.pendingTokens) * TOKEN,
    };
    return { row, t };
  });

const arbInput = fc
  .record({
    rows: fc.uniqueArray(arbRow, { minLength: 1, maxLength: 3, selector: (x) => x.row.key }),
    tokens: fc.integer({ min: 0, max: 25 }),
    laterUs: fc.integer({ min: 0, max: 3_000_000 }),
    writes: fc.integer({ min: 0, max: 7 }),
    borrow: fc.boolean(),
    leaseTokens: fc.constantFrom(0, 0, 1, 3, 50),
  })
  .map((x): PolicyInput => {
    const t = x.rows.reduce((m, r) => (r.t > m ? r.t : m), T0) + BigInt(x.laterUs);
    return {
      rows: x.rows.map((r) => r.row),
      amount: BigInt(x.tokens) * TOKEN,
      instantUs: t,
      wallUs: t,
      denyCacheUs: 100_000n,
      writes: x.writes,
      maxWrites: 6,
      borrowable: new Set(x.borrow ? x.rows.map((r) => r.row.key) : []),
      leaseExpected: BigInt(x.leaseTokens) * TOKEN,
    };
  });

describe("nextStep", () => {
  it("every step is justified by the rows it was shown", () => {
    fc.assert(
      fc.property(arbInput, (input) => {
        const step = nextStep(input);
        const { amount, instantUs: t } = input;
        const short = (r: PolicyRow) => amount > sliceCapacity(r.slice) || level(r.slice, t) < amount;
        // Counting this instance's takes in flight, which a denial may rely on (never a take).
        const shortP = (r: PolicyRow) => amount > sliceCapacity(r.slice) || level(r.slice, t) - (r.pending ?? 0n) < amount;
        switch (step.kind) {
          case "confirm":
            // Only rows that would say "never" and were not read in this decision.
            for (const k of step.keys) {
              const r = input.rows.find((x) => x.key === k) as PolicyRow;
              expect(r.confirmed).toBe(false);
              expect(amount > r.capacity * TOKEN).toBe(true);
            }
            break;
          case "deny":
            expect(step.verdicts.some((v) => v !== "allowed")).toBe(true);
            step.verdicts.forEach((v, i) => {
              const r = input.rows[i] as PolicyRow;
              if (v === "exceeds_capacity") expect(r.confirmed && amount > r.capacity * TOKEN).toBe(true);
              if (v === "insufficient") expect(shortP(r)).toBe(true);
              if (v === "allowed") expect(shortP(r)).toBe(false);
            });
            // A denial needs one copy the store gave this decision, or a cached one younger than the
            // deny cache, that shows it (or a row that can never hold the amount); old cached
            // copies alone must be tried with a write.
            expect(
              step.verdicts.some((v, i) => {
                const r = input.rows[i] as PolicyRow;
                return (
                  v === "exceeds_capacity" ||
                  amount > sliceCapacity(r.slice) ||
                  (v === "insufficient" && (r.confirmed || r.ageUs <= input.denyCacheUs))
                );
              }),
            ).toBe(true);
            break;
          case "borrow":
            for (const k of step.keys) expect(input.borrowable.has(k)).toBe(true);
            break;
          case "read":
            expect(amount).toBe(0n);
            break;
          case "give-up":
            expect(input.writes).toBeGreaterThanOrEqual(input.maxWrites);
            break;
          case "take":
            expect(amount > 0n).toBe(true);
            expect(input.writes).toBeLessThan(input.maxWrites);
            // A lease: one row, the decision's first write, within what the instance expects, and
            // the row (less this instance's takes in flight) stays at least half full after it.
            if (step.lease > 0n) {
              const r = input.rows[0] as PolicyRow;
              expect(input.rows).toHaveLength(1);
              expect(input.writes).toBe(0);
              expect(step.lease <= (input.leaseExpected ?? 0n)).toBe(true);
              expect(step.plans[0]?.amount).toBe(amount + step.lease);
              expect(level(r.slice, t) - (r.pending ?? 0n) - amount - step.lease >= sliceCapacity(r.slice) / 2n).toBe(true);
              expect(applyTake(r.slice, step.plans[0] as never)).toBeDefined();
              break;
            }
            step.plans.forEach((plan, i) => {
              const r = input.rows[i] as PolicyRow;
              // On the exact row, the planned write lands iff an ideal bucket holds the tokens.
              expect(applyTake(r.slice, plan) !== undefined).toBe(!short(r));
              // Never a write when a fresh copy already shows the shortage.
              if (r.confirmed || r.ageUs <= input.denyCacheUs) expect(shortP(r)).toBe(false);
            });
            break;
          default:
            throw new Error(`unexpected step ${step.kind}`);
        }
      }),
      { numRuns: 5000 },
    );
  });

  it("a frozen row waits until its freeze ends, then cancels it", () => {
    const s = newSlice({ capacity: 5n, rate: 0n, capShare: 1_000_000n, rateShare: 1_000_000n }, T0);
    const row: PolicyRow = { key: "k", slice: s, capacity: 5n, ageUs: 0n, confirmed: true, frozenUntilUs: T0 + 1000n };
    const base = { amount: TOKEN, instantUs: T0, denyCacheUs: 0n, writes: 0, maxWrites: 6, borrowable: new Set<string>() };
    expect(nextStep({ ...base, rows: [row], wallUs: T0 + 999n })).toEqual({ kind: "wait", key: "k", untilUs: T0 + 1000n });
    expect(nextStep({ ...base, rows: [row], wallUs: T0 + 1000n })).toEqual({ kind: "unfreeze", key: "k", version: s.version });
  });
});
