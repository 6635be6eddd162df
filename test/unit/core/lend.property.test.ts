import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { planLend, type RegionView, targets } from "../../../lambda/core/rebalance.js";

/** Three regions whose shares sum to one whole share, with demands, and the lender's denial state. */
const world = fc
  .record({
    a: fc.integer({ min: 0, max: 1_000_000 }),
    b: fc.integer({ min: 0, max: 1_000_000 }),
    demands: fc.tuple(
      fc.double({ min: 0, max: 200, noNaN: true }),
      fc.double({ min: 0, max: 200, noNaN: true }),
      fc.double({ min: 0, max: 200, noNaN: true }),
    ),
    short: fc.boolean(),
    need: fc.integer({ min: 0, max: 2_000_000 }),
    hysteresis: fc.integer({ min: 0, max: 500_000 }),
  })
  .map(({ a, b, demands, short, need, hysteresis }) => {
    const first = Math.min(a, b);
    const second = Math.max(a, b) - first;
    const shares = [first, second, 1_000_000 - first - second];
    const views: RegionView[] = ["x", "y", "z"].map((region, i) => ({
      region,
      capShare: BigInt(shares[i] as number),
      rateShare: BigInt(shares[i] as number),
      demand: demands[i] as number,
      short: i === 0 ? short : true,
    }));
    return { views, need: BigInt(need), hysteresis: BigInt(hysteresis) };
  });

describe("planLend: a short, denying lender keeps estimate noise (property)", () => {
  it("denying only ever withholds a whole give, and only when demands are alike, the lender short and its spare within the hysteresis", () => {
    fc.assert(
      fc.property(world, ({ views, need, hysteresis }) => {
        const free = planLend("x", "y", views, { capShare: need });
        const denying = planLend("x", "y", views, { capShare: need, lenderDenying: true, hysteresis });
        if (denying !== undefined) {
          expect(denying).toEqual(free); // never a different give, only none
          return;
        }
        if (free === undefined) return;
        const [me, them] = views as [RegionView, RegionView];
        expect(me.short).toBe(true);
        expect(me.demand <= 2 * them.demand && them.demand <= 2 * me.demand).toBe(true);
        const spare = me.capShare - (targets(views, 0n).get("x") as bigint);
        expect(spare).toBeLessThanOrEqual(hysteresis);
        // And a lender that is not denying gives exactly as before.
        expect(planLend("x", "y", views, { capShare: need, lenderDenying: false, hysteresis })).toEqual(free);
      }),
      { numRuns: 2000 },
    );
  });
});
