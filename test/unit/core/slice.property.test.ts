/**
 * The slice against a plain reference token bucket (level + last refill time, exact
 * integers) over long random traces, including stale caches and concurrent planners.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type Admission, worstOverAdmission } from "../../../lambda/core/accuracy.js";
import {
  applyTake,
  judgeFailure,
  level,
  newSlice,
  planTake,
  rebase,
  retryAfter,
  type SliceState,
  sliceCapacity,
} from "../../../lambda/core/slice.js";
import { TOKEN } from "../../../lambda/core/units.js";

/** The textbook bucket: tokens and the time they were last refilled. */
class ReferenceBucket {
  level: bigint;
  private last: bigint;
  constructor(
    private readonly cap: bigint,
    private readonly perUs: bigint,
    now: bigint,
  ) {
    this.level = cap;
    this.last = now;
  }
  refill(now: bigint): void {
    if (now > this.last) {
      const added = this.perUs * (now - this.last);
      this.level = this.level + added > this.cap ? this.cap : this.level + added;
      this.last = now;
    }
  }
  take(amount: bigint, now: bigint): boolean {
    this.refill(now);
    if (this.level < amount) return false;
    this.level -= amount;
    return true;
  }
}

const T0 = 1_700_000_000_000_000n;
// Round values make exact boundaries (level = amount to the aT) frequent, where an
// off-by-one would show; arbitrary ones cover the rest.
const params = fc.record({
  capacity: fc.integer({ min: 1, max: 1000 }),
  rate: fc.oneof(
    fc.constant(0),
    fc.integer({ min: 1, max: 50 }).map((t) => t * 1_000_000), // whole tokens/s, in µT/s
    fc.integer({ min: 1, max: 5_000_000_000 }), // up to 5000 tokens/s
  ),
  capShare: fc.oneof(fc.constant(1_000_000), fc.constant(500_000), fc.integer({ min: 1, max: 1_000_000 })),
  rateShare: fc.oneof(fc.constant(1_000_000), fc.constant(250_000), fc.integer({ min: 0, max: 1_000_000 })),
});
const step = fc.record({
  dtUs: fc.oneof(
    fc.integer({ min: 0, max: 20 }).map((ms) => ms * 1000),
    fc.integer({ min: 0, max: 2000 }),
    fc.integer({ min: 0, max: 3_000_000 }),
  ),
  tokens: fc.integer({ min: 0, max: 30 }),
});

function sliceOf(p: { capacity: number; rate: number; capShare: number; rateShare: number }): SliceState {
  return newSlice({ capacity: BigInt(p.capacity), rate: BigInt(p.rate), capShare: BigInt(p.capShare), rateShare: BigInt(p.rateShare) }, T0);
}

/** One take as a client does it: plan from `cache`, apply, replan from the real row on a stale failure. */
function clientTake(real: SliceState, cache: SliceState, amount: bigint, now: bigint) {
  let known = cache;
  for (let i = 0; i < 4; i++) {
    const next = applyTake(real, planTake(known, amount, now));
    if (next) return { allowed: true as const, real: next };
    const failure = judgeFailure(real, amount, now);
    if (failure.kind === "insufficient") return { allowed: false as const, real, retryAfterUs: failure.retryAfterUs };
    known = real;
  }
  throw new Error("a fresh cache must always decide");
}

describe("slice (token-clock GCRA)", () => {
  it("decides exactly like the reference bucket over long random traces", () => {
    fc.assert(
      fc.property(params, fc.array(step, { minLength: 50, maxLength: 400 }), (p, steps) => {
        // Prepare
        let slice = sliceOf(p);
        const ref = new ReferenceBucket(sliceCapacity(slice), BigInt(p.rate) * BigInt(p.rateShare), T0);
        let now = T0;
        for (const s of steps) {
          now += BigInt(s.dtUs);
          const amount = BigInt(s.tokens) * TOKEN;
          if (amount === 0n || amount > sliceCapacity(slice)) continue;
          // Act
          const got = clientTake(slice, slice, amount, now);
          const want = ref.take(amount, now);
          // Assess
          expect(got.allowed).toBe(want);
          slice = got.real;
          expect(level(slice, now)).toBe(ref.level);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("with stale caches, never admits what the reference bucket lacks and never denies what it holds", () => {
    fc.assert(
      fc.property(
        params,
        fc.array(fc.record({ client: fc.integer({ min: 0, max: 3 }), s: step }), { minLength: 50, maxLength: 300 }),
        (p, steps) => {
          let real = sliceOf(p);
          const caches = [real, real, real, real];
          const ref = new ReferenceBucket(sliceCapacity(real), BigInt(p.rate) * BigInt(p.rateShare), T0);
          let now = T0;
          for (const { client, s } of steps) {
            now += BigInt(s.dtUs);
            const amount = BigInt(s.tokens) * TOKEN;
            if (amount === 0n || amount > sliceCapacity(real)) continue;
            const got = clientTake(real, caches[client] as SliceState, amount, now);
            expect(got.allowed).toBe(ref.take(amount, now));
            real = got.real;
            caches[client] = real; // the client learns the row from the write's answer
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("holds the window bound: no window admits more than C + r·(b − a)", () => {
    fc.assert(
      fc.property(params, fc.array(step, { minLength: 100, maxLength: 600 }), (p, steps) => {
        const whole = { ...p, capShare: 1_000_000, rateShare: 1_000_000 };
        let slice = sliceOf(whole);
        let now = T0;
        const admitted: Admission[] = [];
        for (const s of steps) {
          now += BigInt(s.dtUs);
          const amount = BigInt(Math.max(1, s.tokens)) * TOKEN;
          if (amount > sliceCapacity(slice)) continue;
          const got = clientTake(slice, slice, amount, now);
          slice = got.real;
          if (got.allowed) admitted.push({ atUs: now, amount });
        }
        const worst = worstOverAdmission(admitted, BigInt(whole.capacity) * TOKEN, BigInt(whole.rate) * 1_000_000n);
        expect(worst).toBeLessThanOrEqual(0n);
      }),
      { numRuns: 300 },
    );
  });

  it("retryAfter is the exact earliest instant the tokens are there", () => {
    fc.assert(
      fc.property(
        params.filter((p) => p.rate > 0 && p.rateShare > 0),
        fc.integer({ min: 1, max: 30 }),
        fc.integer({ min: 0, max: 5_000_000 }),
        (p, tokens, dt) => {
          let slice = sliceOf(p);
          const amount = BigInt(tokens) * TOKEN;
          if (amount > sliceCapacity(slice)) return;
          slice = { ...slice, mark: sliceCapacity(slice) }; // drained at T0
          const now = T0 + BigInt(dt);
          const wait = retryAfter(slice, amount, now) as bigint;
          expect(level(slice, now + wait)).toBeGreaterThanOrEqual(amount);
          if (wait > 0n) expect(level(slice, now + wait - 1n)).toBeLessThan(amount);
        },
      ),
    );
  });

  it("rebase carries tokens over by each inherit mode, never above the new capacity", () => {
    fc.assert(
      fc.property(params, params, fc.integer({ min: 0, max: 1000 }), (a, b, used) => {
        const now = T0 + 10n;
        const before = { ...sliceOf(a), mark: BigInt(Math.min(used, a.capacity)) * BigInt(a.capShare) * 1_000_000_000_000n };
        const next = { capacity: BigInt(b.capacity), rate: BigInt(b.rate), capShare: BigInt(b.capShare), rateShare: BigInt(b.rateShare) };
        const old = level(before, now);
        const oldCap = sliceCapacity(before);
        const newCap = sliceCapacity(next);
        const cap = (v: bigint) => (v < newCap ? v : newCap);
        const cases = {
          proportional: (old * newCap) / oldCap,
          "as-is": cap(old),
          reset: newCap,
          additive: cap(old + (newCap > oldCap ? newCap - oldCap : 0n)),
        } as const;
        for (const [mode, want] of Object.entries(cases)) {
          const after = rebase(before, now, next, mode as keyof typeof cases);
          expect(level(after, now)).toBe(want);
          expect(after.version).toBe(before.version + 1);
        }
      }),
    );
  });
});

describe("worstOverAdmission", () => {
  it("finds the excess of the worst window", () => {
    // C = 2 tokens, r = 1 token/s (10¹² aT/µs); 4 tokens within one second: 4 > 2 + 1.
    const perUs = 1_000_000_000_000n;
    const at = (s: number, n: number) => ({ atUs: BigInt(s * 1_000_000), amount: BigInt(n) * TOKEN });
    expect(worstOverAdmission([at(0, 2), at(0.5, 1), at(1, 1)], 2n * TOKEN, perUs)).toBe(1n * TOKEN);
    expect(worstOverAdmission([at(0, 2), at(1, 1), at(2, 1)], 2n * TOKEN, perUs)).toBe(0n);
  });
});
