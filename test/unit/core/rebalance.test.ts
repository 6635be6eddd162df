import { describe, expect, it } from "vitest";
import { demandAt, observeDemand } from "../../../lambda/core/demand.js";
import { defaultPolicy, isShort, planLend, planRebalance, targets } from "../../../lambda/core/rebalance.js";
import { TOKEN } from "../../../lambda/core/units.js";

const view = (region: string, share: number, demand: number) => ({ region, capShare: BigInt(share), rateShare: BigInt(share), demand });
const policy = { capFloor: 10_000n, rateFloor: 1_000n, hysteresis: 20_000n, lendHysteresis: 100_000n };

describe("rebalance", () => {
  it("targets follow demand above the floor and sum to one share", () => {
    const t = targets([view("a", 0, 30), view("b", 0, 10)], 10_000n);
    expect(t.get("a")).toBe(10_000n + (980_000n * 3n) / 4n);
    expect([...t.values()].reduce((a, b) => a + b, 0n)).toBeLessThanOrEqual(1_000_000n);
  });

  it("an idle donor gives all its excess to the busy region", () => {
    const gives = planRebalance("a", [view("a", 500_000, 0), view("b", 500_000, 50)], policy, false);
    expect(gives).toEqual([{ peer: "b", cap: 490_000n, rate: 499_000n }]);
  });

  it("a donor that denied recently, or sits within hysteresis, gives nothing", () => {
    expect(planRebalance("a", [view("a", 500_000, 0), view("b", 500_000, 50)], policy, true)).toEqual([]);
    expect(planRebalance("a", [view("a", 510_000, 50), view("b", 490_000, 50)], policy, false)).toEqual([]);
  });

  it("splits the excess over several regions in proportion to their deficits", () => {
    const gives = planRebalance("a", [view("a", 800_000, 0), view("b", 100_000, 30), view("c", 100_000, 10)], policy, false);
    const b = gives.find((g) => g.peer === "b");
    const c = gives.find((g) => g.peer === "c");
    expect(b && c && b.cap > c.cap).toBe(true);
  });

  it("default floors hold at least one token of capacity", () => {
    expect(defaultPolicy(10, 2).capFloor).toBe(100_000n);
    expect(defaultPolicy(10_000, 2).capFloor).toBe(10_000n);
  });
});

describe("demand", () => {
  it("estimates a steady rate and decays it when the region falls silent", () => {
    let e = observeDemand(undefined, 0n, 0n, 250_000);
    for (let i = 1; i <= 20; i++) e = observeDemand(e, BigInt(i * 10) * TOKEN, BigInt(i * 100_000), 250_000);
    expect(e.rate).toBeGreaterThan(95);
    expect(e.rate).toBeLessThan(101);
    expect(demandAt(e, e.atUs + 1_000_000n, 250_000)).toBeLessThan(e.rate / 10);
  });
});

describe("lending (a borrower ran dry)", () => {
  it("an idle lender lends down to zero when the need is the whole bucket", () => {
    const v = [view("a", 500_000, 0), view("b", 500_000, 80)];
    expect(planLend("a", "b", v, { capShare: 1_000_000n })).toEqual({ peer: "b", cap: 500_000n, rate: 500_000n });
  });

  it("gives what the borrower needs, not what its demand alone would claim", () => {
    const v = [view("a", 600_000, 0), view("b", 400_000, 1)];
    expect(planLend("a", "b", v, { capShare: 20_000n })).toEqual({ peer: "b", cap: 20_000n, rate: 20_000n });
    expect(planLend("a", "b", v, { capShare: 0n })).toBeUndefined();
  });

  it("a busy lender keeps its demand's part of the bucket", () => {
    // a and b each ask 50/s: a keeps half however much b says it needs.
    const v = [view("a", 700_000, 50), view("b", 300_000, 50)];
    expect(planLend("a", "b", v, { capShare: 1_000_000n })).toEqual({ peer: "b", cap: 200_000n, rate: 200_000n });
    expect(planLend("a", "b", [view("a", 500_000, 50), view("b", 500_000, 50)], { capShare: 1_000_000n })).toBeUndefined();
  });

  it("a short, denying lender asked by a borrower with about its demand lends only a surplus above the hysteresis", () => {
    const strained = { lenderDenying: true, hysteresis: 100_000n };
    // Both ask ~30/s: a holds 5.7% above its demand's part (estimate noise).
    const noise = [view("a", 540_000, 29), view("b", 460_000, 31)];
    expect(planLend("a", "b", noise, { capShare: 1_000_000n })).toBeDefined();
    expect(planLend("a", "b", noise, { capShare: 1_000_000n, lenderDenying: false, hysteresis: 100_000n })).toBeDefined();
    expect(planLend("a", "b", noise, { capShare: 1_000_000n, ...strained })).toBeUndefined();
    // Not short (its share's refill serves it): the rule does not apply.
    expect(
      planLend("a", "b", [{ ...view("a", 540_000, 29), short: false }, view("b", 460_000, 31)], { capShare: 1_000_000n, ...strained }),
    ).toBeDefined();
    // Demand moved to b (more than twice a's): everything spare goes, however small.
    const shifted = [view("a", 400_000, 9), view("b", 600_000, 21)];
    expect(planLend("a", "b", shifted, { capShare: 1_000_000n, ...strained })?.cap).toBe(400_000n - 300_000n);
    // A burst region asked by a trickle (less than half its demand): the small need is lent.
    const trickle = [view("a", 990_000, 50), view("b", 10_000, 1)];
    expect(planLend("a", "b", trickle, { capShare: 5_000n, ...strained })?.cap).toBe(5_000n);
    // Alike demands: exactly at the hysteresis is still noise; one ppm above it lends.
    expect(planLend("a", "b", [view("a", 600_000, 1), view("b", 400_000, 1)], { capShare: 1_000_000n, ...strained })).toBeUndefined();
    expect(planLend("a", "b", [view("a", 600_001, 1), view("b", 399_999, 1)], { capShare: 1_000_000n, ...strained })?.cap).toBe(100_001n);
    expect(defaultPolicy(60, 2).lendHysteresis).toBe(100_000n);
  });

  it("never gives more than it holds, whatever the need and demands", () => {
    for (let i = 0; i < 500; i++) {
      const share = BigInt(Math.floor(Math.random() * 1_000_001));
      const v = [view("a", Number(share), Math.random() * 10), view("b", 1_000_000 - Number(share), Math.random() * 100)];
      const g = planLend("a", "b", v, { capShare: BigInt(Math.floor(Math.random() * 2_000_000)) });
      if (g) {
        expect(g.cap).toBeGreaterThanOrEqual(0n);
        expect(g.cap).toBeLessThanOrEqual(share);
        expect(g.rate).toBeLessThanOrEqual(share);
      }
    }
  });
});

describe("donors give only to short regions", () => {
  it("a region is short when its demand exceeds its refill, or it has demand and less than one token", () => {
    expect(isShort({ capShare: 500_000n, rateShare: 500_000n, demand: 30 }, 100, 50)).toBe(true);
    expect(isShort({ capShare: 500_000n, rateShare: 500_000n, demand: 20 }, 100, 50)).toBe(false);
    expect(isShort({ capShare: 5_000n, rateShare: 500_000n, demand: 0.1 }, 100, 50)).toBe(true);
    expect(isShort({ capShare: 0n, rateShare: 0n, demand: 0 }, 100, 50)).toBe(false);
  });

  it("a trickle that its share serves receives nothing, however the estimates swing", () => {
    const v = [
      { ...view("a", 600_000, 0.1), short: false },
      { ...view("b", 400_000, 2), short: false },
    ];
    expect(planRebalance("a", v, policy, false)).toEqual([]);
    expect(planRebalance("a", [v[0] as never, { ...(v[1] as object), short: true } as never], policy, false).length).toBe(1);
  });
});
