import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  defaultPolicy,
  isShort,
  planRebalance,
  planRoomRate,
  type RegionView,
  ROOM_KEEP_FACTOR,
  SHORT_HORIZON_S,
} from "../../../lambda/core/rebalance.js";

const C = 100;
const R = 5;
const policy = defaultPolicy(C, 3);

/** Three regions whose shares sum to one whole share, each with a level within its slice and a demand. */
const world = fc
  .record({
    cuts: fc.tuple(fc.integer({ min: 0, max: 1_000_000 }), fc.integer({ min: 0, max: 1_000_000 })),
    rates: fc.tuple(fc.integer({ min: 0, max: 1_000_000 }), fc.integer({ min: 0, max: 1_000_000 })),
    fill: fc.tuple(
      fc.double({ min: 0, max: 1, noNaN: true }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      fc.double({ min: 0, max: 1, noNaN: true }),
    ),
    full: fc.boolean(),
    demands: fc.tuple(
      fc.double({ min: 0, max: 20, noNaN: true }),
      fc.double({ min: 0, max: 20, noNaN: true }),
      fc.double({ min: 0, max: 20, noNaN: true }),
    ),
  })
  .map(({ cuts, rates, fill, full, demands }) => {
    const split = ([a, b]: [number, number]) => [Math.min(a, b), Math.max(a, b) - Math.min(a, b), 1_000_000 - Math.max(a, b)];
    const cap = split(cuts);
    const rate = split(rates);
    return ["x", "y", "z"].map((region, i): RegionView => {
      const size = ((cap[i] as number) / 1e6) * C;
      // The first region is often exactly full, so the rule is exercised.
      const f = i === 0 && full ? 1 : (fill[i] as number);
      return {
        region,
        capShare: BigInt(cap[i] as number),
        rateShare: BigInt(rate[i] as number),
        demand: demands[i] as number,
        level: size * f,
      };
    });
  });

const room = (v: RegionView) => (Number(v.capShare) / 1e6) * C - (v.level as number);

describe("planRoomRate: a full slice hands the refill it would waste to peers with room (property)", () => {
  it("gives only rate, only from a full slice, only to peers with room, never more than beyond what it keeps", () => {
    fc.assert(
      fc.property(world, (views) => {
        const gives = planRoomRate("x", views, policy, C, R);
        if (gives.length === 0) return;
        const me = views[0] as RegionView;
        expect(room(me)).toBeLessThan(1);
        const keep = Math.max(Number(policy.rateFloor), ((ROOM_KEEP_FACTOR * me.demand) / R) * 1e6);
        const total = gives.reduce((a, g) => a + g.rate, 0n);
        expect(Number(me.rateShare - total)).toBeGreaterThanOrEqual(Math.floor(keep));
        for (const g of gives) {
          expect(g.cap).toBe(0n);
          expect(g.rate).toBeGreaterThan(0n);
          expect(g.peer).not.toBe("x");
          const peer = views.find((v) => v.region === g.peer) as RegionView;
          expect(room(peer)).toBeGreaterThanOrEqual(Math.max(1, (Number(policy.hysteresis) / 1e6) * C));
        }
      }),
      { numRuns: 3000 },
    );
  });

  it("an idle full slice gives all but its floor to the peers with room, split by their room", () => {
    const views: RegionView[] = [
      { region: "x", capShare: 400_000n, rateShare: 400_000n, demand: 0, level: 40 },
      { region: "y", capShare: 400_000n, rateShare: 300_000n, demand: 1, level: 10 }, // 30 tokens of room
      { region: "z", capShare: 200_000n, rateShare: 300_000n, demand: 0, level: 10 }, // 10 tokens of room
    ];
    const gives = planRoomRate("x", views, policy, C, R);
    // The donor step plans it when no peer is short (nothing to rebalance), and never while denying.
    const settled = views.map((v) => ({ ...v, short: false }));
    const limits = { capacity: C, refillRate: R };
    expect(planRebalance("x", settled, policy, false, limits)).toEqual(gives);
    expect(planRebalance("x", settled, policy, true, limits)).toEqual([]);
    expect(planRebalance("x", settled, policy, false)).toEqual([]);
    // A short peer is rebalanced to first (capacity and rate, by its deficit).
    expect(planRebalance("x", views, policy, false, limits).some((g) => g.cap > 0n)).toBe(true);
    const surplus = 400_000n - policy.rateFloor;
    expect(gives).toEqual([
      { peer: "y", cap: 0n, rate: (surplus * 30_000n) / 40_000n },
      { peer: "z", cap: 0n, rate: (surplus * 10_000n) / 40_000n },
    ]);
  });

  it("nothing from a slice with room, without refill, with an unknown level, or when no peer has room", () => {
    const base: RegionView[] = [
      { region: "x", capShare: 500_000n, rateShare: 500_000n, demand: 0, level: 50 },
      { region: "y", capShare: 500_000n, rateShare: 500_000n, demand: 0, level: 10 },
    ];
    expect(planRoomRate("x", base, policy, C, R)).not.toEqual([]);
    expect(planRoomRate("x", [{ ...(base[0] as RegionView), level: 48 }, base[1] as RegionView], policy, C, R)).toEqual([]);
    expect(planRoomRate("x", base, policy, C, 0)).toEqual([]);
    expect(planRoomRate("x", [{ ...(base[0] as RegionView), level: undefined }, base[1] as RegionView], policy, C, R)).toEqual([]);
    expect(planRoomRate("x", [base[0] as RegionView, { ...(base[1] as RegionView), level: 49.5 }], policy, C, R)).toEqual([]);
    // A busy full slice keeps twice its demand's part of the rate: at 5/s of a 5/s bucket, all of it.
    expect(planRoomRate("x", [{ ...(base[0] as RegionView), demand: 5 }, base[1] as RegionView], policy, C, R)).toEqual([]);
  });
});

describe("isShort with a known level", () => {
  it("a slice whose tokens cover its demand beyond its refill for the horizon is not short; one that cannot is", () => {
    const v = { capShare: 500_000n, rateShare: 100_000n, demand: 3 }; // refill 0.5/s of a 5/s bucket: a gap of 2.5/s
    expect(isShort(v, C, R)).toBe(true);
    expect(isShort({ ...v, level: 2.5 * SHORT_HORIZON_S + 1 }, C, R)).toBe(false);
    expect(isShort({ ...v, level: 2.5 * SHORT_HORIZON_S - 1 }, C, R)).toBe(true);
    // Less than one token of capacity with demand is short whatever the level.
    expect(isShort({ ...v, capShare: 5_000n, level: 0.5 }, C, R)).toBe(true);
    expect(isShort({ ...v, demand: 0, level: 0 }, C, R)).toBe(false);
  });
});
