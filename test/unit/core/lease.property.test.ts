/**
 * Leases (`core/lease.ts`): what a take may lease beyond its request, and how a lease is handed
 * out, checked on arbitrary slices and sequences.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { applyRefund, type Lease, leaseExtra, planRefund, serveFromLease } from "../../../lambda/core/lease.js";
import { applyTake, level, newSlice, planTake, type SliceState, sliceCapacity, tokenClock } from "../../../lambda/core/slice.js";
import { TOKEN } from "../../../lambda/core/units.js";

const T0 = 1_700_000_000_000_000n;

const arbSlice = fc
  .record({
    capacity: fc.integer({ min: 1, max: 1000 }),
    rate: fc.constantFrom(0n, 1_000_000n, 30_000_000n),
    share: fc.constantFrom(1_000_000n, 500_000n, 1n),
    taken: fc.integer({ min: 0, max: 1000 }),
  })
  .map((r): SliceState => {
    const s = newSlice({ capacity: BigInt(r.capacity), rate: r.rate, capShare: r.share, rateShare: r.share }, T0);
    const amount = BigInt(r.taken) * TOKEN;
    return applyTake(s, planTake(s, amount, T0)) ?? s;
  });

describe("leaseExtra", () => {
  it("leases whole tokens, within demand and an eighth of the slice, only while the slice stays half full", () => {
    fc.assert(
      fc.property(
        arbSlice,
        fc.integer({ min: 1, max: 20 }),
        fc.bigInt({ min: 0n, max: 500n * TOKEN }),
        fc.integer({ min: 0, max: 10 }),
        fc.integer({ min: 0, max: 2_000_000 }),
        (s, tokens, expected, pendingTokens, laterUs) => {
          const amount = BigInt(tokens) * TOKEN;
          const pending = BigInt(pendingTokens) * TOKEN;
          const at = T0 + BigInt(laterUs);
          const extra = leaseExtra(s, amount, at, expected, pending);
          expect(extra >= 0n).toBe(true);
          expect(extra % TOKEN).toBe(0n);
          expect(extra <= expected).toBe(true);
          expect(extra <= sliceCapacity(s) / 8n).toBe(true);
          if (extra > 0n) expect(level(s, at) - pending - amount - extra >= sliceCapacity(s) / 2n).toBe(true);
          // A lease always fits: the take with it lands on the exact row whenever the request alone would.
          if (extra > 0n) expect(applyTake(s, planTake(s, amount + extra, at))).toBeDefined();
        },
      ),
      { numRuns: 3000 },
    );
  });

  it("leases nothing when the instance expects less than a token over the lease's life, nor on a bucket without refill", () => {
    const s = newSlice({ capacity: 1000n, rate: 1_000_000n, capShare: 1_000_000n, rateShare: 1_000_000n }, T0);
    expect(leaseExtra(s, TOKEN, T0, TOKEN - 1n)).toBe(0n);
    expect(leaseExtra(s, TOKEN, T0, 5n * TOKEN)).toBe(5n * TOKEN);
    expect(leaseExtra({ ...s, rate: 0n }, TOKEN, T0, 5n * TOKEN)).toBe(0n);
    // Below half full after the request: nothing.
    const low = applyTake(s, planTake(s, 500n * TOKEN, T0)) as SliceState;
    expect(leaseExtra(low, TOKEN, T0, 5n * TOKEN)).toBe(0n);
  });
});

describe("serving a lease", () => {
  it("hands out at most what was leased, and nothing after the lease's end", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ extra: fc.integer({ min: 0, max: 20 }), gapUs: fc.integer({ min: 0, max: 60_000 }) }), { maxLength: 6 }),
        fc.array(fc.record({ tokens: fc.integer({ min: 1, max: 4 }), gapUs: fc.integer({ min: 0, max: 40_000 }) }), { maxLength: 40 }),
        fc.constantFrom(50_000n, 100_000n),
        (leases, requests, lifeUs) => {
          // Interleave lease takes and requests on one timeline.
          type Ev = { at: bigint; lease?: bigint; tokens?: bigint };
          const events: Ev[] = [];
          let t = T0;
          for (const l of leases) {
            t += BigInt(l.gapUs);
            events.push({ at: t, lease: BigInt(l.extra) * TOKEN });
          }
          t = T0;
          for (const r of requests) {
            t += BigInt(r.gapUs);
            events.push({ at: t, tokens: BigInt(r.tokens) * TOKEN });
          }
          events.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
          let lease: Lease | undefined;
          let leased = 0n;
          let served = 0n;
          let lost = 0n;
          const takes: { at: bigint; amount: bigint }[] = [];
          for (const e of events) {
            if (e.lease !== undefined) {
              // A new lease ends the current one (its leftover goes back, or is lost).
              lost += lease?.left ?? 0n;
              lease = { left: e.lease, untilUs: e.at + lifeUs, version: 1, markAfter: 0n };
              leased += e.lease;
              takes.push({ at: e.at, amount: e.lease });
            } else {
              const after = serveFromLease(lease, e.tokens as bigint, e.at);
              if (!after) continue;
              // Served within the life of the latest lease take that brought tokens.
              const latest = takes.filter((x) => x.at <= e.at).at(-1);
              expect(latest !== undefined && e.at - latest.at <= lifeUs).toBe(true);
              expect(e.at <= (lease as Lease).untilUs).toBe(true);
              served += (lease as Lease).left - after.left;
              lease = after;
            }
          }
          lost += lease?.left ?? 0n;
          // Every leased token is handed out once or lost, never both, never twice.
          expect(served + lost).toBe(leased);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe("returning a lease", () => {
  it("leaves the row as if the take had leased less, or lower, and never above full; only on the lease's version", () => {
    fc.assert(
      fc.property(
        fc.record({
          capacity: fc.integer({ min: 16, max: 400 }),
          rate: fc.constantFrom(1_000_000n, 30_000_000n, 1_000_000_000n),
          extra: fc.integer({ min: 1, max: 50 }),
          unused: fc.integer({ min: 0, max: 50 }),
          others: fc.array(fc.record({ n: fc.integer({ min: 1, max: 5 }), dtUs: fc.integer({ min: 0, max: 200_000 }) }), { maxLength: 10 }),
          refundAfterUs: fc.integer({ min: 0, max: 3_000_000 }),
          otherVersion: fc.boolean(),
        }),
        (r) => {
          const s0 = newSlice({ capacity: BigInt(r.capacity), rate: r.rate, capShare: 1_000_000n, rateShare: 1_000_000n }, T0);
          const extra = BigInt(r.extra) * TOKEN;
          const unused = (BigInt(Math.min(r.unused, r.extra)) * TOKEN) as bigint;
          // The lease take, and the history as if it had leased `unused` less.
          let real = applyTake(s0, planTake(s0, TOKEN + extra, T0));
          let ideal = applyTake(s0, planTake(s0, TOKEN + extra - unused, T0));
          if (!real || !ideal) return;
          const markAfter = real.mark;
          let t = T0;
          for (const o of r.others) {
            t += BigInt(o.dtUs);
            const n = BigInt(o.n) * TOKEN;
            const next = applyTake(real, planTake(real, n, t));
            if (!next) continue;
            real = next;
            // Whatever the real row admits, the ideal one (with more tokens) admits too.
            ideal = applyTake(ideal, planTake(ideal, n, t)) as SliceState;
            expect(ideal).toBeDefined();
          }
          const at = t + BigInt(r.refundAfterUs);
          const lease: Lease = { left: unused, untilUs: T0, version: r.otherVersion ? real.version + 1 : real.version, markAfter };
          const plan = planRefund(real, lease, at);
          if (r.otherVersion || unused === 0n) {
            expect(plan).toBeUndefined();
            return;
          }
          const after = plan ? applyRefund(real, plan) : real;
          expect(after).toBeDefined();
          const back = after as SliceState;
          // Never more than the lease left, never above full.
          expect(real.mark - back.mark <= unused).toBe(true);
          expect(level(back, at) <= sliceCapacity(back)).toBe(true);
          if (plan) expect(back.mark >= tokenClock(back, at)).toBe(true);
          // The ideal history's level bounds the returned row's (the refund adds nothing a smaller lease would not have left).
          expect(level(back, at) <= level(ideal, at)).toBe(true);
        },
      ),
      { numRuns: 3000 },
    );
  });
});
