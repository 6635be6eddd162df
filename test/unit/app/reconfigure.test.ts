import { describe, expect, it } from "vitest";
import { MemoryBucketStore } from "../../../lambda/adapters/memory/store.js";
import { BucketAdmin } from "../../../lambda/app/buckets.js";
import { Limiter } from "../../../lambda/app/limiter.js";
import { TOKEN } from "../../../lambda/core/units.js";
import { FakeClock } from "../../helpers/fake-clock.js";

function setup() {
  const store = new MemoryBucketStore("r1");
  const clock = new FakeClock();
  return { store, clock, admin: new BucketAdmin({ store, clock }), limiter: new Limiter({ store, clock, rules: [] }) };
}
const take = (l: Limiter, n: number) => l.rate({ key: "k", tokens: n, headers: {} });

describe("runtime reconfiguration", () => {
  it.each([
    ["proportional", 50], // 5 of 10 → 50 of 100
    ["as-is", 5],
    ["reset", 100],
    ["additive", 95], // 5 + (100 − 10)
  ] as const)("inherit %s carries the tokens over", async (inherit, expected) => {
    const { admin, limiter } = setup();
    await admin.put("k", { capacity: 10, refillRate: 0, onError: "deny" }, "t");
    await take(limiter, 5);
    await admin.patch("k", { capacity: 100, inherit }, "t");
    const d = await take(limiter, 0);
    expect(d.buckets[0]?.remaining).toBe(BigInt(expected) * TOKEN);
  });

  it("refuses limits outside the bucket's bounds and keeps the audit trail", async () => {
    const { admin } = setup();
    await admin.put("k", { capacity: 100, refillRate: 10, onError: "deny" }, "alice", { minCapacity: 50, maxCapacity: 200 });
    await expect(admin.patch("k", { capacity: 20 }, "bob")).rejects.toMatchObject({ code: "request.out_of_bounds" });
    await expect(admin.patch("k", { maxCapacity: 10 }, "bob")).rejects.toMatchObject({ code: "request.out_of_bounds" });
    await admin.patch("k", { capacity: 150 }, "bob");
    const history = await admin.history("k");
    expect(history.map((h) => [h.by, h.old?.capacity ?? null, h.new.capacity])).toEqual([
      ["alice", null, 100],
      ["bob", 100, 150],
    ]);
    expect((await admin.get("k")).maxCapacity).toBe(200);
  });
});
