/**
 * The borrower's back-off after a refused borrow: doubling from the configured base when a peer
 * failed or refused for another reason, from the lenders' own "short until" hint when every one
 * of them said it (a lender that is short itself refuses for a known time, issue 12).
 * The peer is a test double: what it answers is the input here.
 */
import { describe, expect, it } from "vitest";
import { MemoryBucketStore } from "../../../lambda/adapters/memory/store.js";
import { BucketAdmin } from "../../../lambda/app/buckets.js";
import { Limiter } from "../../../lambda/app/limiter.js";
import type { BorrowAnswer, PeerTransfer } from "../../../lambda/ports/peer-transfer.js";
import { FakeClock } from "../../helpers/fake-clock.js";

const topology = { self: "us-east-1", regions: ["us-east-1", "eu-central-1"] };

async function setup(answer: BorrowAnswer) {
  const clock = new FakeClock();
  const store = new MemoryBucketStore("us-east-1");
  const calls: number[] = [];
  const transfer: PeerTransfer = {
    borrow: async () => {
      calls.push(Number((clock.nowUs() - start) / 1000n));
      return answer;
    },
  };
  const start = clock.nowUs();
  const limiter = new Limiter({ store, clock, topology, rules: [], leaseMs: 0, borrow: { transfer, budgetMs: 0, backoffMs: 500 } });
  await new BucketAdmin({ store, clock, topology }).put("k", { capacity: 2, refillRate: 0, onError: "deny" }, "test");
  // The region's slice holds 1 token (half of 2): the second request finds it dry.
  expect((await limiter.rate({ key: "k", tokens: 1, headers: {} })).allowed).toBe(true);
  return { clock, calls, limiter };
}

/** Sends one denied request every 10 ms for `ms`, and lets the background borrows settle. */
async function hammer(s: Awaited<ReturnType<typeof setup>>, ms: number) {
  for (let t = 0; t < ms; t += 10) {
    expect((await s.limiter.rate({ key: "k", tokens: 1, headers: {} })).allowed).toBe(false);
    await new Promise((r) => setImmediate(r));
    s.clock.advanceMs(10);
  }
}

describe("the borrow back-off", () => {
  it("starts from the lenders' hint when every lender is short itself, and doubles from there", async () => {
    const s = await setup({ ok: false, reason: "the lender is short itself", retryInMs: 40 });
    await hammer(s, 400);
    // 0, +40, +80, +160: the waits double from the hint (the old fixed base asked once in 400 ms).
    expect(s.calls).toEqual([0, 40, 120, 280]);
  });

  it("keeps the configured base when a lender refuses without a hint", async () => {
    const s = await setup({ ok: false, reason: "no such bucket here" });
    await hammer(s, 1600);
    expect(s.calls).toEqual([0, 500, 1500]);
  });
});
