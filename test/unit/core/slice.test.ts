import { describe, expect, it } from "vitest";
import { toSliceParams } from "../../../lambda/core/limits.js";
import { applyTake, level, newSlice, planTake, resetAfter, retryAfter, sliceCapacity } from "../../../lambda/core/slice.js";
import { TOKEN } from "../../../lambda/core/units.js";

const T0 = 1_000_000_000n;
const bucket = (capacity: number, refillRate: number) => newSlice(toSliceParams({ capacity, refillRate, onError: "deny" }), T0);

describe("slice boundaries", () => {
  it("allows a take of exactly the level and denies one aT more", () => {
    // Prepare: capacity 10, no refill, 3 tokens + 0 aT left.
    const s = { ...bucket(10, 0), mark: 7n * TOKEN };
    // Act / Assess
    expect(applyTake(s, planTake(s, 3n * TOKEN, T0))).toBeDefined();
    expect(applyTake({ ...s, mark: 7n * TOKEN + 1n }, planTake(s, 3n * TOKEN, T0))).toBeUndefined();
  });

  it("treats a slice whose mark equals its clock as full (reset form)", () => {
    const s = bucket(10, 1);
    const plan = planTake({ ...s, mark: 0n }, TOKEN, T0 + 5_000_000n);
    expect(plan.kind).toBe("reset");
  });

  it("a refill rate of 0 is a fixed pool", () => {
    let s = bucket(100, 0);
    let allowed = 0;
    for (let i = 0; i < 150; i++) {
      const next = applyTake(s, planTake(s, TOKEN, T0 + BigInt(i) * 1_000_000_000n));
      if (next) {
        s = next;
        allowed++;
      }
    }
    expect(allowed).toBe(100);
    expect(retryAfter(s, TOKEN, T0)).toBeNull();
    expect(resetAfter(s, T0)).toBeNull();
  });

  it("refills exactly: capacity 10 at 5/s, drained, holds 5 tokens after 1 s", () => {
    const s = { ...bucket(10, 5), mark: sliceCapacity(bucket(10, 5)) };
    expect(level(s, T0 + 1_000_000n)).toBe(5n * TOKEN);
    expect(level(s, T0 + 999_999n)).toBeLessThan(5n * TOKEN);
    expect(retryAfter(s, 5n * TOKEN, T0)).toBe(1_000_000n);
  });

  it("fractional rates are exact: 0.3 tokens/s gives 3 tokens in 10 s", () => {
    const s = { ...bucket(10, 0.3), mark: sliceCapacity(bucket(10, 0.3)) };
    expect(level(s, T0 + 10_000_000n)).toBe(3n * TOKEN);
  });
});
