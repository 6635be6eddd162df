import { describe, expect, it } from "vitest";
import { retryHint } from "../../../lambda/core/decision.js";
import { applyTake, newSlice, planTake, type SliceState, sliceCapacity } from "../../../lambda/core/slice.js";
import { TOKEN } from "../../../lambda/core/units.js";

const slice = (capacity: number, refillRate: number, capShare: bigint, rateShare: bigint) =>
  newSlice({ capacity: BigInt(capacity), rate: BigInt(refillRate) * 1_000_000n, capShare, rateShare }, 0n);
/** The slice emptied at t = 0. */
const drained = (s: SliceState) => applyTake(s, planTake(s, sliceCapacity(s), 0n)) as SliceState;

describe("retryHint: every denial says when to come back", () => {
  it("a slice that refills to the amount: its own refill time", () => {
    const s = drained(slice(10, 10, 1_000_000n, 1_000_000n));
    expect(retryHint(s, 10, TOKEN, 0n, undefined)).toBe(100_000n); // 1 token at 10/s
  });

  it("a request beyond the slice but within the bucket: when the next borrow may start", () => {
    const s = slice(10, 0, 500_000n, 500_000n); // holds 5 of 10, no refill
    expect(retryHint(s, 10, 8n * TOKEN, 0n, undefined)).toBeNull(); // one region: never (the reason is insufficient)
    expect(retryHint(s, 10, 8n * TOKEN, 0n, 400_000n)).toBe(400_000n);
    expect(retryHint(s, 10, 8n * TOKEN, 0n, 0n)).toBe(1000n); // at least one millisecond
  });

  it("the sooner of refill and borrow", () => {
    const s = drained(slice(10, 1, 500_000n, 500_000n)); // empty, refills at 0.5/s: 2 s for a token
    expect(retryHint(s, 10, TOKEN, 0n, 300_000n)).toBe(300_000n);
    expect(retryHint(s, 10, TOKEN, 0n, 10_000_000n)).toBe(2_000_000n);
  });

  it("above the bucket's capacity: null (the reason says exceeds_capacity)", () => {
    expect(retryHint(slice(10, 10, 500_000n, 500_000n), 10, 11n * TOKEN, 0n, 0n)).toBeNull();
  });
});
