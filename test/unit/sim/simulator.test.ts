/** The simulator: safety over every shipped scenario, determinism, and its metrics. */
import { describe, expect, it } from "vitest";
import { simulate, timeToFollow } from "../../../sim/engine.js";
import { CAPACITY_SCENARIOS, parseScenario, SCENARIOS } from "../../../sim/scenario.js";

describe("simulator", () => {
  it.each(Object.keys(SCENARIOS))(
    "%s never admits over the global bound (borrow on and off)",
    async (name) => {
      const sc = parseScenario(SCENARIOS[name], name);
      for (const borrow of [true, false]) {
        const r = await simulate(sc, { borrow });
        // Clock skew may show as r × skew in true time (ARCHITECTURE.md §7); elsewhere nothing at all.
        const skew = Math.max(0, ...Object.values(sc.skewMs).map((ms) => Math.abs(ms) / 1000));
        expect(r.worstOverAdmission).toBeLessThanOrEqual(sc.refillRate * 2 * skew);
        expect(r.admitted).toBeLessThanOrEqual(r.requests);
        // Capacity-dominated bursts need borrowing: without it a region holds only its share.
        if (borrow || !(name in CAPACITY_SCENARIOS)) expect(r.utilisation).toBeGreaterThan(0.9);
      }
    },
    60_000,
  );

  it("a one-region burst on a fresh bucket (3 regions, C = 37, no refill) gets all 37 tokens, never more", async () => {
    const r = await simulate(parseScenario(SCENARIOS["one-region-burst"], "one-region-burst"), { borrow: true });
    expect(r.admitted).toBe(37);
    expect(r.ideal).toBe(37);
    // ...and the last of them within two borrow round trips of the first denial.
    expect(r.roundTripsToLastToken).not.toBeNull();
    expect(r.roundTripsToLastToken).toBeLessThanOrEqual(2);
  });

  it("a replication lag shorter than the borrow call: the share replication brings first counts as borrowed (before: 29%, every such borrow backed off)", async () => {
    const fast = parseScenario({ ...(SCENARIOS["rotating-bursts"] as object), lagMs: 10, rttMs: 100 }, "rotating-bursts, lag 10 ms");
    const r = await simulate(fast, { borrow: true });
    expect(r.utilisation).toBeGreaterThanOrEqual(0.95);
    expect(r.worstOverAdmission).toBeLessThanOrEqual(0);
  }, 60_000);

  it("no replication lag at all: the regions do not hand rate back and forth without end (before: the run never finished)", async () => {
    const instant = parseScenario(
      { ...(SCENARIOS["rotating-bursts"] as object), lagMs: 0, jitter: 0, durationS: 100 },
      "rotating-bursts, lag 0",
    );
    const r = await simulate(instant, { borrow: true });
    expect(r.worstOverAdmission).toBeLessThanOrEqual(0);
    expect(r.utilisation).toBeGreaterThanOrEqual(0.9);
  }, 60_000);

  it("capacity-dominated bursts: small buckets ≥ 95%, rotating bursts ≥ 95% of one central bucket (before: 67% and 86%)", async () => {
    const small = await simulate(parseScenario(SCENARIOS["small-bucket"], "small-bucket"), { borrow: true });
    const rotating = await simulate(parseScenario(SCENARIOS["rotating-bursts"], "rotating-bursts"), { borrow: true });
    expect(small.utilisation).toBeGreaterThanOrEqual(0.95);
    expect(rotating.utilisation).toBeGreaterThanOrEqual(0.95);
  }, 60_000);

  it("is deterministic for a seed", async () => {
    const sc = parseScenario({ ...(SCENARIOS.spike as object), arrivals: "poisson", seed: 7, durationS: 120 }, "t");
    const a = await simulate(sc, { borrow: true });
    const b = await simulate(sc, { borrow: true });
    expect(b).toEqual(a);
  });

  it("follows a shift faster with borrow than without", async () => {
    const sc = parseScenario(SCENARIOS["follow-the-sun"], "follow-the-sun");
    const on = await simulate(sc, { borrow: true });
    const off = await simulate(sc, { borrow: false });
    expect(on.timeToFollowMs).not.toBeNull();
    expect(off.timeToFollowMs).not.toBeNull();
    expect(on.timeToFollowMs as number).toBeLessThan(off.timeToFollowMs as number);
  }, 60_000);

  it("rejects a scenario file with a bad field, naming it", () => {
    expect(() => parseScenario({ name: "x", regions: ["a"], demand: { b: [{ fromS: 0, rate: 1 }] } }, "x.yaml")).toThrow(
      /x.yaml: demand.b: "b" is not in regions/,
    );
  });
});

describe("timeToFollow", () => {
  const at = (s: number) => BigInt(Math.round(s * 1e6));
  it("is 0 when every window after the shift already holds 0.9·r", () => {
    const times = Array.from({ length: 100 }, (_, i) => at(10 + i * 0.1)); // 10/s from t = 10
    expect(timeToFollow(times, at(10), at(20), 10)).toBe(0);
  });
  it("finds when the region starts admitting at the rate", () => {
    const times = Array.from({ length: 80 }, (_, i) => at(12 + i * 0.1)); // nothing until 12 s
    const t = timeToFollow(times, at(10), at(20), 10) as number;
    expect(t).toBeGreaterThan(1000);
    expect(t).toBeLessThanOrEqual(2001);
  });
});

describe("baselines (what the benchmarks compare against)", () => {
  it("a shared LWW item and G-counters over-admit under lag where tokenbank does not", async () => {
    const { simulateBaseline } = await import("../../../sim/baselines.js");
    const sc = parseScenario({ ...(SCENARIOS.steady as object), durationS: 60, lagMs: 1000 }, "steady");
    expect(simulateBaseline(sc, "lww", 1000).worstOverAdmission).toBeGreaterThan(10);
    expect(simulateBaseline(sc, "gcounter", 1000).worstOverAdmission).toBeGreaterThan(0);
    expect((await simulate(sc, { borrow: true })).worstOverAdmission).toBeLessThanOrEqual(0);
    expect((await simulate(sc, { borrow: false, rebalance: false })).worstOverAdmission).toBeLessThanOrEqual(0);
  });
});
