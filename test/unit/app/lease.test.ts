/**
 * Leases in the limiter: a hot key is answered mostly from memory, every token handed out was
 * charged to the slice before, at most a lease's life earlier, and near the boundary every
 * decision goes through the store exactly as without leases.
 */
import { describe, expect, it } from "vitest";
import { MemoryBucketStore } from "../../../lambda/adapters/memory/store.js";
import { BucketAdmin } from "../../../lambda/app/buckets.js";
import { Limiter } from "../../../lambda/app/limiter.js";
import { type Admission, worstOverAdmission } from "../../../lambda/core/accuracy.js";
import { TOKEN } from "../../../lambda/core/units.js";
import type { TakeItem, TakeOutcome } from "../../../lambda/ports/bucket-store.js";
import { FakeClock } from "../../helpers/fake-clock.js";

/** A limiter over a memory store that records every applied take (instant, aT). */
async function setup(capacity: number, refillRate: number, leaseMs?: number) {
  const store = new MemoryBucketStore();
  const clock = new FakeClock();
  await new BucketAdmin({ store, clock }).put("k", { capacity, refillRate, onError: "deny" }, "test");
  const takes: { atUs: bigint; amount: bigint }[] = [];
  const take = store.take.bind(store);
  store.take = async (items: readonly TakeItem[], record?: never): Promise<TakeOutcome> => {
    const out = await take(items, record);
    if (out.ok) for (const i of items) takes.push({ atUs: i.nowUs, amount: i.plan.amount });
    return out;
  };
  const limiter = new Limiter({ store, clock, rules: [], ...(leaseMs === undefined ? {} : { leaseMs }) });
  return { store, clock, limiter, takes };
}

const sum = (xs: readonly { amount: bigint }[]) => xs.reduce((a, x) => a + x.amount, 0n);

describe("leases", () => {
  it("answer a hot key mostly without a write; every token handed out was charged before, at most a lease's life earlier", async () => {
    const { clock, limiter, takes } = await setup(100_000, 1000);
    const handed: Admission[] = [];
    for (let i = 0; i < 2000; i++) {
      clock.advanceMs(1); // 1,000 requests/s from this instance
      const d = await limiter.rate({ key: "k", tokens: 1, headers: {} });
      expect(d.allowed).toBe(true);
      handed.push({ atUs: clock.now, amount: TOKEN });
    }
    const s = limiter.stats;
    // About 100 ms of demand per lease: most decisions need no call.
    expect(s.leased).toBeGreaterThan(1800);
    expect(s.takeWrites).toBeLessThan(100);
    expect(s.decisions).toBe(2000);
    // Handed out ≤ charged, and what was charged but not handed out is exactly what the lease still holds or lost.
    const charged = sum(takes);
    expect(charged >= 2000n * TOKEN).toBe(true);
    expect(charged - 2000n * TOKEN).toBeLessThanOrEqual(BigInt(s.leaseUnused) * TOKEN + 200n * TOKEN);
    // By hand-out instants, the bound holds up to the refill of one lease life (r · 100 ms = 100 tokens).
    const worst = worstOverAdmission(handed, 100_000n * TOKEN, 1000n * 1_000_000n * 1_000_000n);
    expect(worst <= 100n * TOKEN).toBe(true);
  });

  it("near the boundary every decision is its own take: allowed tokens equal charged tokens", async () => {
    const { clock, limiter, takes } = await setup(60, 30);
    let allowed = 0n;
    for (let i = 0; i < 3000; i++) {
      clock.advanceMs(10); // 100 requests/s into a 30/s bucket: drained after the first second
      const d = await limiter.rate({ key: "k", tokens: 1, headers: {} });
      if (d.allowed) allowed += TOKEN;
      if (i === 299) {
        // Drained from here on: from now on no lease is granted.
        takes.length = 0;
        allowed = 0n;
        limiter.stats.leaseTokens = 0;
      }
    }
    expect(limiter.stats.leaseTokens).toBe(0);
    expect(sum(takes)).toBe(allowed);
    // 27 s at 30/s, the exact refill.
    expect(allowed).toBe(810n * TOKEN);
  });

  it("never serve a request with an idempotency key, and are off with leaseMs 0", async () => {
    const a = await setup(100_000, 1000);
    for (let i = 0; i < 300; i++) {
      a.clock.advanceMs(1);
      await a.limiter.rate({ key: "k", tokens: 1, headers: {}, idempotencyKey: `r${i}` });
    }
    expect(a.limiter.stats.leased).toBe(0);
    expect(a.limiter.stats.leaseTokens).toBe(0);
    const b = await setup(100_000, 1000, 0);
    for (let i = 0; i < 300; i++) {
      b.clock.advanceMs(1);
      await b.limiter.rate({ key: "k", tokens: 1, headers: {} });
    }
    expect(b.limiter.stats.leased).toBe(0);
    expect(b.limiter.stats.takeWrites).toBe(300);
    expect(sum(b.takes)).toBe(300n * TOKEN);
  });

  it("a lease that ends unused is never handed out late, and goes back to the slice", async () => {
    const { store, clock, limiter, takes } = await setup(100_000, 1);
    for (let i = 0; i < 200; i++) {
      clock.advanceMs(1);
      await limiter.rate({ key: "k", tokens: 1, headers: {} });
    }
    const held = sum(takes) - 200n * TOKEN;
    expect(held > 0n).toBe(true);
    clock.advanceMs(150); // past the lease's life
    const before = limiter.stats.takeWrites;
    await limiter.rate({ key: "k", tokens: 1, headers: {} });
    // The ended lease served nothing: this request was a write of its own.
    expect(limiter.stats.takeWrites).toBe(before + 1);
    await new Promise((r) => setTimeout(r, 0));
    // Its leftover was refunded: the slice has admitted exactly what was handed out (plus what the new lease holds).
    expect(BigInt(limiter.stats.leaseReturned) * TOKEN).toBe(held);
    expect(limiter.stats.leaseUnused).toBe(0);
    const row = await store.getSlice("k");
    const newLease = sum(takes.slice(-1)) - TOKEN;
    expect(row?.consumed).toBe(201n * TOKEN + newLease);
  });

  it("a bucket without refill is never leased: every token goes through the store", async () => {
    const { limiter, clock } = await setup(100_000, 0);
    for (let i = 0; i < 300; i++) {
      clock.advanceMs(1);
      await limiter.rate({ key: "k", tokens: 1, headers: {} });
    }
    expect(limiter.stats.leaseTokens).toBe(0);
    expect(limiter.stats.takeWrites).toBe(300);
  });
});
