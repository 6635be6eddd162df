import { describe, expect, it } from "vitest";
import { MemoryBucketStore } from "../../../lambda/adapters/memory/store.js";
import { Limiter } from "../../../lambda/app/limiter.js";
import { Merger } from "../../../lambda/app/merger.js";
import type { Topology } from "../../../lambda/app/topology.js";
import { parseRules } from "../../../lambda/core/rules.js";
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
