import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  defaultPolicy,
  isShort,
  planRebalance,
  planRoomRate,
  type RegionView,
  ROOM_HORIZON_S,
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

const room = (v: RegionView) => Math.max(0, (Number(v.capShare) / 1e6) * C - (v.level as number));
const minRoom = Math.max(1, (Number(policy.hysteresis) / 1e6) * C);
/** One region's view: shares in ppm, demand in tokens/s, level in tokens. */
const view = (region: string, capShare: bigint, rateShare: bigint, demand: number, level: number): RegionView => ({
  region,
  capShare,
  rateShare,
  demand,
  level,
});

/** The views after `donor`'s rate gives have landed. */
const applyGives = (views: readonly RegionView[], donor: string, gives: readonly { peer: string; rate: bigint }[]): RegionView[] => {
  const total = gives.reduce((a, g) => a + g.rate, 0n);
  return views.map((v) => ({
    ...v,
    rateShare: v.rateShare + (gives.find((g) => g.peer === v.region)?.rate ?? 0n) - (v.region === donor ? total : 0n),
  }));
};

/** The equal-fill target rate of a region, ppm: its part of the room. */
const targetOf = (views: readonly RegionView[], v: RegionView) => {
  const total = views.reduce((a, x) => a + room(x), 0);
  return Math.floor((room(v) / total) * 1e6);
};

describe("planRoomRate: a slice about to fill hands the refill it would waste to peers with room (property)", () => {
  it("gives only rate, only from a slice that fills within the horizon, only to peers below their equal-fill target, never beyond it", () => {
    fc.assert(
      fc.property(world, (views) => {
        const gives = planRoomRate("x", views, policy, C, R);
        if (gives.length === 0) return;
        const me = views[0] as RegionView;
        const net = (Number(me.rateShare) / 1e6) * R - me.demand;
        expect(net).toBeGreaterThan(0);
        expect(room(me)).toBeLessThanOrEqual(net * ROOM_HORIZON_S);
        expect(views.reduce((a, v) => a + v.demand, 0)).toBeLessThan(R);
        const keep = Math.max(Number(policy.rateFloor), targetOf(views, me), ((ROOM_KEEP_FACTOR * me.demand) / R) * 1e6);
        const total = gives.reduce((a, g) => a + g.rate, 0n);
        expect(Number(me.rateShare - total)).toBeGreaterThanOrEqual(Math.floor(keep));
        for (const g of gives) {
          expect(g.cap).toBe(0n);
          expect(g.rate).toBeGreaterThan(0n);
          expect(g.peer).not.toBe("x");
          const peer = views.find((v) => v.region === g.peer) as RegionView;
          expect(room(peer)).toBeGreaterThanOrEqual(minRoom);
          // Never beyond the peer's target: it would fill first and waste the refill in turn.
          expect(Number(peer.rateShare + g.rate)).toBeLessThanOrEqual(targetOf(views, peer) + 1);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it("a receiver never gives the rate back, whatever it estimates the others' demand to be (the targets come from the rows)", () => {
    fc.assert(
      fc.property(
        world,
        fc.tuple(fc.double({ min: 0, max: 20, noNaN: true }), fc.double({ min: 0, max: 20, noNaN: true })),
        (views, other) => {
          const gives = planRoomRate("x", views, policy, C, R);
          const after = applyGives(views, "x", gives);
          for (const g of gives) {
            // The receiver's own estimates of the other two regions' demand differ from the donor's.
            let i = 0;
            const seen = after.map((v) => (v.region === g.peer ? v : { ...v, demand: other[i++] as number }));
            expect(planRoomRate(g.peer, seen, policy, C, R).filter((back) => back.peer === "x")).toEqual([]);
          }
        },
      ),
      { numRuns: 3000 },
    );
  });

  it("two regions that estimate a third's demand differently do not hand its rate back and forth (found at zero lag, where they did without end)", () => {
    // b's view at the start of a burst in c: b estimates c's demand at 3.07/s, c itself at 0.64/s.
    const seenByB: RegionView[] = [
      view("a", 325_360n, 62_187n, 0.006, 32.32),
      view("b", 493_821n, 878_604n, 0.441, 46.65),
      view("c", 180_819n, 59_209n, 3.071, 15.87),
    ];
    const gives = planRoomRate("b", seenByB, policy, C, R);
    expect(gives.length).toBeGreaterThan(0);
    const seenByC = applyGives(seenByB, "b", gives).map((v) => (v.region === "c" ? { ...v, demand: 0.638 } : v));
    expect(planRoomRate("c", seenByC, policy, C, R).filter((g) => g.peer === "b")).toEqual([]);
  });

  it("a slice about to fill gives what lies beyond its own target, so that every slice fills at the same moment", () => {
    // Rooms 2, 30 and 10 of 42: targets 4.8%, 71.4% and 23.8% of the rate.
    const views: RegionView[] = [
      view("x", 400_000n, 600_000n, 0, 38),
      view("y", 400_000n, 200_000n, 1, 10),
      view("z", 200_000n, 200_000n, 0, 10),
    ];
    const gives = planRoomRate("x", views, policy, C, R);
    const target = (v: RegionView) => BigInt(targetOf(views, v));
    const surplus = 600_000n - target(views[0] as RegionView);
    const dy = target(views[1] as RegionView) - 200_000n;
    expect(dy).toBeGreaterThan(0n);
    const dz = target(views[2] as RegionView) - 200_000n;
    expect(dz).toBeGreaterThan(0n);
    // The surplus (the rate beyond x's target) covers both shortfalls: each peer gets exactly its own.
    expect(surplus).toBeGreaterThan(dy + dz);
    expect(gives).toEqual([
      { peer: "y", cap: 0n, rate: dy },
      { peer: "z", cap: 0n, rate: dz },
    ]);
    // After the gives, every idle slice fills at the same moment (y's demand takes a little of its refill).
    const fillTime = (v: RegionView, rate: bigint) => room(v) / ((Number(rate) / 1e6) * R - v.demand);
    expect(fillTime(views[0] as RegionView, 600_000n - dy - dz)).toBeCloseTo(fillTime(views[2] as RegionView, 200_000n + dz), 1);
    // Whoever receives sees itself at its target and gives nothing back (the same rows, the same targets).
    const after = applyGives(views, "x", gives);
    expect(planRoomRate("y", after, policy, C, R)).toEqual([]);
    expect(planRoomRate("z", after, policy, C, R)).toEqual([]);
    // The donor step plans it when no peer is short (nothing to rebalance), and never while denying.
    const settled = views.map((v) => ({ ...v, short: false }));
    const limits = { capacity: C, refillRate: R };
    expect(planRebalance("x", settled, policy, false, limits)).toEqual(gives);
    expect(planRebalance("x", settled, policy, true, limits)).toEqual([]);
    expect(planRebalance("x", settled, policy, false)).toEqual([]);
  });

  it("nothing from a slice that does not fill within the horizon, without refill, with an unknown level, or when no peer has room", () => {
    const base: RegionView[] = [
      { region: "x", capShare: 500_000n, rateShare: 500_000n, demand: 0, level: 50 },
      { region: "y", capShare: 500_000n, rateShare: 500_000n, demand: 0, level: 10 },
    ];
    expect(planRoomRate("x", base, policy, C, R)).not.toEqual([]);
    // 2.5/s fills 25 tokens of room in exactly the horizon; 26 takes longer.
    expect(
      planRoomRate("x", [{ ...(base[0] as RegionView), level: 50 - 2.5 * ROOM_HORIZON_S }, base[1] as RegionView], policy, C, R),
    ).not.toEqual([]);
    expect(
      planRoomRate("x", [{ ...(base[0] as RegionView), level: 49 - 2.5 * ROOM_HORIZON_S }, base[1] as RegionView], policy, C, R),
    ).toEqual([]);
    expect(planRoomRate("x", base, policy, C, 0)).toEqual([]);
    expect(planRoomRate("x", [{ ...(base[0] as RegionView), level: undefined }, base[1] as RegionView], policy, C, R)).toEqual([]);
    expect(planRoomRate("x", [base[0] as RegionView, { ...(base[1] as RegionView), level: 49.5 }], policy, C, R)).toEqual([]);
    // A slice whose demand takes its whole refill never fills; demand above the bucket's refill leaves none to move.
    expect(planRoomRate("x", [{ ...(base[0] as RegionView), demand: 2.5 }, base[1] as RegionView], policy, C, R)).toEqual([]);
    expect(
      planRoomRate(
        "x",
        [
          { ...(base[0] as RegionView), demand: 1 },
          { ...(base[1] as RegionView), demand: 4 },
        ],
        policy,
        C,
        R,
      ),
    ).toEqual([]);
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
