import { describe, expect, it } from "vitest";
import { demandAt, observeDemand } from "../../../lambda/core/demand.js";
import { defaultPolicy, planRebalance, targets } from "../../../lambda/core/rebalance.js";
import { TOKEN } from "../../../lambda/core/units.js";

const view = (region: string, share: number, demand: number) => ({ region, capShare: BigInt(share), rateShare: BigInt(share), demand });
const policy = { capFloor: 10_000n, rateFloor: 1_000n, hysteresis: 20_000n };

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
