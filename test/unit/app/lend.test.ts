import { describe, expect, it } from "vitest";
import { MemoryBucketStore } from "../../../lambda/adapters/memory/store.js";
import { Limiter } from "../../../lambda/app/limiter.js";
import { Merger } from "../../../lambda/app/merger.js";
import type { Topology } from "../../../lambda/app/topology.js";
import { parseRules } from "../../../lambda/core/rules.js";
import { level } from "../../../lambda/core/slice.js";
import { TOKEN } from "../../../lambda/core/units.js";
import type { StoredSlice } from "../../../lambda/ports/bucket-store.js";
import { FakeClock } from "../../helpers/fake-clock.js";

const topo: Topology = { self: "b", regions: ["a", "b"] };
const rules = parseRules({ rules: [{ name: "agent", key: "agent-{{ .Key }}", capacity: 10, refillRate: 1 }] }, "test");
const KEY = "agent-x";

/**
 * Region b serves 10 requests/s on a bucket refilling 1/s (short, denying all the time, its
 * denials flushed every 100 ms) while a borrower asks it for share. b holds half the share.
 */
async function denyingLender() {
  const clock = new FakeClock();
  const store = new MemoryBucketStore("b");
  const limiter = new Limiter({ store, clock, rules, topology: topo, leaseMs: 0 });
  const merger = new Merger({ store, clock, topology: topo, rules });
  const ask = (demand: number, needTokens = 1) => merger.lend({ key: KEY, borrower: "a", demand, needTokens });
  for (let i = 0; i < 30; i++) {
    await limiter.rate({ key: "x", headers: {}, tokens: 1 });
    // The lender sees its own row only when asked: ask for nothing now and then (it observes its demand).
    if (i % 10 === 9) {
      clock.advanceMs(60);
      expect(await ask(0, 0)).toMatchObject({ ok: true, lent: false });
      clock.advanceMs(40);
    } else clock.advanceMs(100);
  }
  await limiter.rate({ key: "x", headers: {}, tokens: 1 }); // a denial, flushed at this instant
  clock.advanceMs(100); // past the 50 ms guard, well within the 250 ms deny guard
  return { store, ask };
}

describe("lend: a short lender that keeps denying", () => {
  it("refuses share that is only demand-estimate noise to a borrower with about its demand, and writes nothing", async () => {
    const { store, ask } = await denyingLender();
    const before = await store.getSlice(KEY);
    expect(before?.lastDeniedUs).toBeDefined();
    expect(before?.capShare).toBe(500_000n);
    // b holds half and its own estimate (10/s, decayed over 100 ms) is about 7.6/s: against a
    // borrower at 10/s its part is 43%, 7% spare (< 10%), and the demands are alike.
    const answer = await ask(10);
    expect(answer).toMatchObject({ ok: true, lent: false });
    const after = await store.getSlice(KEY);
    expect(after?.version).toBe(before?.version);
    expect(after?.capShare).toBe(before?.capShare);
  });

  it("lends to a borrower whose demand is more than twice its own (demand moved there)", async () => {
    const { store, ask } = await denyingLender();
    const before = await store.getSlice(KEY);
    const answer = await ask(40);
    expect(answer).toMatchObject({ ok: true, lent: true });
    const after = await store.getSlice(KEY);
    expect(after?.capShare).toBeLessThan(before?.capShare as bigint);
    expect(after?.writer).toBe("lend");
  });
});

describe("lend: a lender that holds much share but few tokens (after a burst)", () => {
  const bursty = parseRules({ rules: [{ name: "b", key: "{{ .Key }}", capacity: 100, refillRate: 5 }] }, "test");
  it("hands the borrower the tokens it is short of, not only the proportional part of its level", async () => {
    const clock = new FakeClock();
    const store = new MemoryBucketStore("b");
    const limiter = new Limiter({ store, clock, rules: bursty, topology: topo, leaseMs: 0 });
    const merger = new Merger({ store, clock, topology: topo, rules: bursty });
    // b spends a burst of 49 of its 50 tokens, then serves a trickle: its own estimate is small.
    expect((await limiter.rate({ key: "k", headers: {}, tokens: 49 })).allowed).toBe(true);
    expect(await merger.lend({ key: "k", borrower: "a", demand: 0, needTokens: 0 })).toMatchObject({ lent: false });
    clock.advanceMs(200);
    expect((await limiter.rate({ key: "k", headers: {}, tokens: 1 })).allowed).toBe(true);
    const before = (await store.getSlice("k")) as StoredSlice;
    const had = level(before, clock.nowUs());
    expect(had).toBe(TOKEN / 2n); // 1 token left, 0.2 s of refill at 2.5/s, 1 spent
    expect(had).toBeLessThan(TOKEN); // b holds half the capacity but under one token
    // a (10/s) ran dry and is short of one token; b's own demand keeps part of the share from the lend.
    const answer = await merger.lend({ key: "k", borrower: "a", demand: 10, needTokens: 1 });
    expect(answer).toMatchObject({ ok: true, lent: true });
    const after = (await store.getSlice("k")) as StoredSlice;
    const lent = answer.ok ? answer.given : undefined;
    expect(lent?.cap).toBeGreaterThan(0n);
    expect(lent?.cap).toBeLessThan(before.capShare); // b keeps share for its own demand
    // A proportional cut of b's level would carry `had · cap / capShare`, less than all of it;
    // the lend carries every token b has (it is short of one), and b's level drops by exactly that.
    expect(lent?.tokens).toBe(had);
    expect(level(after, clock.nowUs())).toBe(0n);
  });
});
