/** The per-rule cap under a reconciler pass that runs while new buckets are created. */
import { describe, expect, it } from "vitest";
import { MemoryBucketStore } from "../../../lambda/adapters/memory/store.js";
import { Limiter } from "../../../lambda/app/limiter.js";
import { reconcile } from "../../../lambda/app/reconciler.js";
import { parseRules } from "../../../lambda/core/rules.js";
import { recountKeepsClaims } from "../../helpers/bucket-cap.js";
import { FakeClock } from "../../helpers/fake-clock.js";

const rules = parseRules(
  { rules: [{ name: "per-user", key: "user-{{ .Request.Header.X-User-Id }}", capacity: 5, refillRate: 1, maxBuckets: 5 }] },
  "test",
);

describe("the per-rule cap's recount", () => {
  it("keeps the claims made while the pass ran (memory store)", async () => {
    await recountKeepsClaims(new MemoryBucketStore());
  });

  /**
   * Three users, then one reconciler pass during which `arrive` runs once, before the first scan
   * page (`before`: the scan then finds the new rows too) or after it (they land where it has
   * already scanned). Returns the rate call for a further user.
   */
  async function passWithArrivals(when: "before" | "after", arrivals: readonly string[]) {
    const store = new MemoryBucketStore();
    const clock = new FakeClock();
    const limiter = new Limiter({ store, clock, rules });
    const user = (id: string) => limiter.rate({ tokens: 1, headers: { "x-user-id": id } });
    for (const id of ["a", "b", "c"]) expect((await user(id)).allowed).toBe(true);
    const scan = store.scanPage.bind(store);
    let once = true;
    const arrive = async () => {
      if (!once) return;
      once = false;
      for (const id of arrivals) expect((await user(id)).allowed).toBe(true);
    };
    store.scanPage = async (cursor, limit) => {
      if (when === "before") await arrive();
      const page = await scan(cursor, limit);
      if (when === "after") await arrive();
      return page;
    };
    await reconcile({ store, clock, topology: { self: store.region, regions: [store.region] } });
    return user;
  }

  it("a reconciler pass during which two new buckets appear leaves the cap exact", async () => {
    // The pass scans the replica as it is, then two users arrive before it writes its counts.
    const user = await passWithArrivals("after", ["d", "e"]);
    // Five live buckets on a cap of 5: a sixth user is refused (the old recount made it 3 and let two more in).
    await expect(user("f")).rejects.toMatchObject({ code: "rule.bucket_cap_reached" });
  });

  it("a bucket created during the pass that the pass also finds is counted once, not twice", async () => {
    // The pass has read the claims; a user arrives before the scan, which then finds its row too.
    const user = await passWithArrivals("before", ["d"]);
    // Four live buckets on a cap of 5: one more user fits (counted twice, the cap was already "full"), then no more.
    expect((await user("e")).allowed).toBe(true);
    await expect(user("f")).rejects.toMatchObject({ code: "rule.bucket_cap_reached" });
  });
});
