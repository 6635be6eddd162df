/** Reconciler and forecaster paths over in-memory stores with a fake clock. */
import { describe, expect, it } from "vitest";
import { MemoryBucketStore } from "../../../lambda/adapters/memory/store.js";
import { BucketAdmin } from "../../../lambda/app/buckets.js";
import { configuredLimits, type ForecasterMemory, handleForecastEvent, runForecaster } from "../../../lambda/app/forecasting.js";
import { Limiter } from "../../../lambda/app/limiter.js";
import { makeSlice } from "../../../lambda/app/new-row.js";
import { reconcile } from "../../../lambda/app/reconciler.js";
import type { Topology } from "../../../lambda/app/topology.js";
import { give } from "../../../lambda/core/escrow.js";
import { parseRules } from "../../../lambda/core/rules.js";
import { level, sliceCapacity } from "../../../lambda/core/slice.js";
import { TOKEN } from "../../../lambda/core/units.js";
import type { StoredSlice } from "../../../lambda/ports/bucket-store.js";
import { FakeClock, tickingClock } from "../../helpers/fake-clock.js";

const topo = (self: string): Topology => ({ self, regions: ["a", "b"] });
const limits = { capacity: 100, refillRate: 10, onError: "deny" as const, ttl: 60 };

/** Region a's store with b's row replicated into it. */
async function twoRegions(
  clock: FakeClock,
  shape?: (a: StoredSlice, b: StoredSlice) => [StoredSlice, StoredSlice],
  l: typeof limits | Omit<typeof limits, "ttl"> = limits,
) {
  const store = new MemoryBucketStore("a");
  let a = makeSlice("k", topo("a"), l, { kind: "rule", rule: "r" }, clock.nowUs());
  let b = makeSlice("k", topo("b"), l, { kind: "rule", rule: "r" }, clock.nowUs());
  if (shape) [a, b] = shape(a, b);
  await store.createSlice(a);
  store.putReplica(b);
  return store;
}

/** Region a alone with one slice of "k", and a fresh forecaster memory. */
async function oneForecastSlice() {
  const clock = new FakeClock();
  const store = new MemoryBucketStore("a");
  await store.createSlice(makeSlice("k", topo("a"), limits, { kind: "rule", rule: "r" }, clock.nowUs()));
  const memory: ForecasterMemory = new Map();
  return { clock, store, memory, deps: { store, clock, topology: topo("a") } };
}

describe("reconciler", () => {
  it("returns idle share above the baseline to the region below it", async () => {
    const clock = new FakeClock();
    // a holds 80%: it gave nothing, b gave it 30% (merged), and a has been idle for two minutes.
    const store = await twoRegions(
      clock,
      (a, b) => {
        const bGave = give(b, "a", 300_000n, 300_000n, clock.nowUs());
        return [{ ...a, capShare: 800_000n, rateShare: 800_000n, takes: { b: bGave.gives.a as never } }, bGave];
      },
      { capacity: 100, refillRate: 10, onError: "deny" },
    );
    clock.advanceMs(120_000);
    const report = await reconcile({ store, clock, topology: topo("a") }, { quietMs: 10_000 });
    expect(report.violations).toEqual([]);
    expect(report.actions.map((x) => x.action)).toEqual(["return-idle"]);
    expect((await store.getSlice("k"))?.capShare).toBe(500_000n);
  });

  it("expires a bucket every region left idle and full for longer than its ttl", async () => {
    const clock = new FakeClock();
    const store = await twoRegions(clock);
    clock.advanceMs(30_000);
    expect((await reconcile({ store, clock, topology: topo("a") })).actions).toEqual([]);
    clock.advanceMs(60_000);
    const report = await reconcile({ store, clock, topology: topo("a") });
    expect(report.actions.map((x) => x.action)).toEqual(["expire"]);
    expect(await store.getSlice("k")).toBeUndefined();
  });

  it("a budgeted run stops, checkpoints and resumes: every idle bucket of 500 is expired exactly once over the runs", async () => {
    const clock = new FakeClock();
    const ticking = tickingClock(clock);
    const store = new MemoryBucketStore("a");
    for (let i = 0; i < 500; i++) {
      const key = `k${String(i).padStart(3, "0")}`;
      await store.createSlice(makeSlice(key, topo("a"), limits, { kind: "rule", rule: "r" }, clock.nowUs()));
      store.putReplica(makeSlice(key, topo("b"), limits, { kind: "rule", rule: "r" }, clock.nowUs()));
    }
    clock.advanceMs(600_000);
    const expired: string[] = [];
    let runs = 0;
    for (let done = false; !done && runs < 50; runs++) {
      const report = await reconcile({ store, clock: ticking, topology: topo("a") }, { budgetMs: 5, pageSize: 50, snapshots: false });
      expired.push(...report.actions.filter((a) => a.action === "expire").map((a) => a.key));
      done = report.complete;
    }
    expect(runs).toBeGreaterThan(1);
    expect(expired.length).toBe(500);
    expect(new Set(expired).size).toBe(500);
    expect(await store.getCheckpoint("reconcile")).toBeUndefined();
  });

  it("a whole pass resets each rule's live-bucket count to what it found (expired rows no longer count)", async () => {
    const clock = new FakeClock();
    const store = new MemoryBucketStore("a");
    const rules = parseRules({ rules: [{ name: "per-user", key: "u-{{ .Key }}", capacity: 5, refillRate: 1, maxBuckets: 3 }] }, "t");
    const limiter = new Limiter({ store, clock, rules, topology: { self: "a", regions: ["a"] } });
    for (const k of ["1", "2", "3"]) expect((await limiter.rate({ key: k, tokens: 1, headers: {} })).allowed).toBe(true);
    await expect(limiter.rate({ key: "4", tokens: 1, headers: {} })).rejects.toThrow(/already has its 3 live buckets/);
    // Two rows go (TTL, in one region); the next whole pass counts 1 and makes room for two more.
    await store.deleteSlice("u-1");
    await store.deleteSlice("u-2");
    await reconcile({ store, clock, topology: { self: "a", regions: ["a"] } });
    expect((await limiter.rate({ key: "4", tokens: 1, headers: {} })).allowed).toBe(true);
    expect((await limiter.rate({ key: "5", tokens: 1, headers: {} })).allowed).toBe(true);
    await expect(limiter.rate({ key: "6", tokens: 1, headers: {} })).rejects.toThrow(/maxBuckets/);
  });

  it("an I2 violation in its own row (a row claiming a larger capacity than the bucket's) is repaired; one in a peer's row raises UnrepairedViolations", async () => {
    const clock = new FakeClock();
    const metrics: string[] = [];
    const telemetry = { metric: (name: string) => void metrics.push(name), log: () => undefined };
    const config = {
      key: "k",
      limits: { capacity: 10, refillRate: 0, onError: "deny" as const },
      version: 1,
      updatedAt: 1,
      updatedBy: "ops",
      origin: "a",
    };
    const forged = { capacity: 1_000_000_000, refillRate: 0, onError: "deny" as const };
    const setup = async (forgedRegion: "a" | "b") => {
      const store = new MemoryBucketStore("a");
      await store.putConfig(config, 0);
      const row = (region: string) =>
        makeSlice("k", topo(region), region === forgedRegion ? forged : config.limits, { kind: "override", version: 1 }, clock.nowUs(), 1);
      await store.createSlice(row("a"));
      store.putReplica(row("b"));
      return store;
    };
    // Our row (a) holds half of a 1e9-token bucket: far above the 10 the config says.
    const ours = await setup("a");
    const first = await reconcile({ store: ours, clock, topology: topo("a"), telemetry }, { quietMs: 0 });
    expect(first.violations.map((v) => v.invariant)).toContain("I2");
    expect(first.actions.map((a) => a.action)).toEqual(["repair-limits"]);
    expect((await ours.getSlice("k"))?.limits.capacity).toBe(10);
    expect((await reconcile({ store: ours, clock, topology: topo("a"), telemetry }, { quietMs: 0 })).violations).toEqual([]);
    // The peer's row is forged: this region may not write it; it says so, loudly.
    metrics.length = 0;
    const theirs = await setup("b");
    const report = await reconcile({ store: theirs, clock, topology: topo("a"), telemetry }, { quietMs: 0 });
    expect(report.violations.map((v) => v.invariant)).toContain("I2");
    expect(report.actions).toEqual([]);
    expect(metrics).toContain("UnrepairedViolations");
  });

  it("holds a rule's bucket to this region's rules file: a forged capacity in its own row is re-based onto the rule's", async () => {
    const clock = new FakeClock();
    const rules = parseRules({ rules: [{ name: "per-user", key: "u-{{ .Key }}", capacity: 10, refillRate: 0, ttl: 3600 }] }, "t");
    const rule = rules[0] as (typeof rules)[number];
    const forged = { ...rule.limits, capacity: 1_000_000_000 };
    const store = new MemoryBucketStore("a");
    const row = (region: string, limits: typeof rule.limits) =>
      makeSlice("u-1", topo(region), limits, { kind: "rule", rule: "per-user" }, clock.nowUs());
    await store.createSlice(row("a", forged));
    store.putReplica(row("b", rule.limits));
    // The row's own word (half of 1e9 tokens) is what the old reconciler judged by: nothing seen.
    expect((await reconcile({ store, clock, topology: topo("a") }, { quietMs: 0, dryRun: true })).actions).toEqual([]);
    const report = await reconcile({ store, clock, topology: topo("a"), rules }, { quietMs: 0 });
    expect(report.actions).toEqual([expect.objectContaining({ key: "u-1", action: "repair-limits", applied: true })]);
    const repaired = (await store.getSlice("u-1")) as StoredSlice;
    expect(repaired.limits).toEqual(rule.limits);
    expect(level(repaired, clock.nowUs())).toBeLessThanOrEqual(sliceCapacity(repaired));
    expect(sliceCapacity(repaired)).toBe(5n * 10n ** 18n); // half of 10 tokens, not half of 1e9
    // Held to the rule, the bucket now verifies, and nothing more is done.
    const next = await reconcile({ store, clock, topology: topo("a"), rules }, { quietMs: 0 });
    expect(next.violations).toEqual([]);
    expect(next.actions).toEqual([]);
    // A request for 6 tokens in this region is now above its slice; before, the forged slice held 5e8.
    const limiter = new Limiter({ store, clock, rules, topology: topo("a") });
    expect((await limiter.rate({ key: "1", tokens: 6, headers: {} })).allowed).toBe(false);
  });

  it("the configured limits of a grown bucket come from the operator's change, even before the forecaster's history entry has replicated", () => {
    const limits = (capacity: number, refillRate: number) => ({ capacity, refillRate, onError: "deny" as const });
    const entry = (version: number, by: string, old: ReturnType<typeof limits> | null, next: ReturnType<typeof limits>) => ({
      key: "k",
      version,
      at: version,
      by,
      region: "a",
      inherit: "as-is" as const,
      old,
      new: next,
    });
    const config = { key: "k", limits: limits(100, 20), version: 2, updatedAt: 2, updatedBy: "forecaster:grow", origin: "a" };
    const operator = entry(1, "ops", null, limits(25, 5));
    const grow = entry(2, "forecaster:grow", limits(25, 5), limits(100, 20));
    expect(configuredLimits(config, [operator, grow])).toEqual({ capacity: 25, refillRate: 5 });
    // In another region the config (version 2) can arrive before its history entry: still the operator's 25 and 5.
    expect(configuredLimits(config, [operator])).toEqual({ capacity: 25, refillRate: 5 });
  });

  it("dry run reports and writes nothing", async () => {
    const clock = new FakeClock();
    const store = await twoRegions(clock);
    clock.advanceMs(120_000);
    const report = await reconcile({ store, clock, topology: topo("a") }, { dryRun: true });
    expect(report.actions).toEqual([expect.objectContaining({ action: "expire", applied: false })]);
    expect(await store.getSlice("k")).toBeDefined();
  });
});

describe("forecaster", () => {
  it("rejects malformed forecast events with a clear code", async () => {
    const deps = { store: new MemoryBucketStore("a"), clock: new FakeClock(), topology: topo("a") };
    await expect(handleForecastEvent(deps, { "detail-type": "other", detail: {} })).rejects.toMatchObject({
      code: "event.invalid_forecast",
    });
    await expect(
      handleForecastEvent(deps, { "detail-type": "tokenbank.forecast", detail: { key: "k", expectedRate: 1, from: "soon", until: 5 } }),
    ).rejects.toThrow(/detail.from/);
    await expect(
      handleForecastEvent(deps, {
        "detail-type": "tokenbank.forecast",
        detail: { key: "k", region: "mars", expectedRate: 1, from: 1, until: 5 },
      }),
    ).rejects.toThrow(/"mars" is not one of/);
  });

  it("predictive throttling lowers the refill to its bound during a surge forecast and restores it after", async () => {
    const clock = new FakeClock();
    const store = new MemoryBucketStore("a");
    await new BucketAdmin({ store, clock, topology: topo("a") }).put("k", { capacity: 100, refillRate: 50, onError: "deny" }, "ops", {
      predictive: true,
      minRefillRate: 10,
    });
    const nowMs = Number(clock.nowUs() / 1000n);
    await handleForecastEvent(
      { store, clock, topology: topo("a") },
      {
        "detail-type": "tokenbank.forecast",
        detail: { key: "k", region: "b", expectedRate: 200, from: nowMs + 1000, until: nowMs + 20_000 },
      },
    );
    const memory: ForecasterMemory = new Map();
    const deps = { store, clock, topology: topo("a") };
    // The event throttles at once (its window opens before the next run); the run keeps it.
    expect((await store.getConfig("k"))?.limits.refillRate).toBe(10);
    expect((await runForecaster(deps, memory)).throttled).toEqual([]);
    expect((await store.getConfig("k"))?.limits.refillRate).toBe(10);
    clock.advanceMs(30_000);
    expect((await runForecaster(deps, memory)).restored).toEqual(["k"]);
    expect((await store.getConfig("k"))?.limits.refillRate).toBe(50);
    expect((await store.history("k")).map((h) => h.by)).toEqual(["ops", "forecaster:throttle", "forecaster:restore"]);
  });

  it("forecast growth: a surge announced 30 s ahead grows the bucket within its bounds before it starts, and the next run after it restores the configured limits", async () => {
    const clock = new FakeClock();
    const store = new MemoryBucketStore("a");
    const admin = new BucketAdmin({ store, clock, topology: topo("a") });
    await admin.put("g", { capacity: 100, refillRate: 10, onError: "deny" }, "ops", {
      forecastGrowth: true,
      maxCapacity: 400,
      maxRefillRate: 30,
    });
    const nowMs = Number(clock.nowUs() / 1000n);
    const deps = { store, clock, topology: topo("a") };
    const memory: ForecasterMemory = new Map();
    // 30 s ahead, scheduled runs every 60 s: the event itself grows the bucket (the window opens before the next run).
    await handleForecastEvent(deps, {
      "detail-type": "tokenbank.forecast",
      detail: { key: "g", region: "b", expectedRate: 80, from: nowMs + 30_000, until: nowMs + 90_000 },
    });
    // 80/s asked: refill min(30, 80) = 30; capacity min(400, 100·80/10) = 400; tokens added with the room.
    expect((await store.getConfig("g"))?.limits).toMatchObject({ capacity: 400, refillRate: 30 });
    expect((await store.getSlice("g"))?.limits.capacity).toBe(400);
    clock.advanceMs(60_000);
    expect((await runForecaster(deps, memory)).grown).toEqual([]); // still in the window: unchanged
    clock.advanceMs(60_000);
    expect((await runForecaster(deps, memory)).restored).toEqual(["g"]);
    expect((await store.getConfig("g"))?.limits).toMatchObject({ capacity: 100, refillRate: 10 });
    expect((await store.history("g")).map((h) => h.by)).toEqual(["ops", "forecaster:grow", "forecaster:restore"]);
    // An operator change while grown becomes the configured value that the restore returns to.
    await handleForecastEvent(deps, {
      "detail-type": "tokenbank.forecast",
      detail: {
        key: "g",
        region: "a",
        expectedRate: 40,
        from: Number(clock.nowUs() / 1000n),
        until: Number(clock.nowUs() / 1000n) + 30_000,
      },
    });
    expect((await store.getConfig("g"))?.limits).toMatchObject({ capacity: 400, refillRate: 30 });
    await admin.patch("g", { capacity: 50 }, "ops");
    clock.advanceMs(60_000);
    await runForecaster(deps, memory);
    expect((await store.getConfig("g"))?.limits).toMatchObject({ capacity: 50, refillRate: 30 });
  });

  it("forecast growth from the built-in forecaster's forecasts: the scheduled run grows and restores", async () => {
    const clock = new FakeClock();
    const store = new MemoryBucketStore("a");
    await new BucketAdmin({ store, clock, topology: topo("a") }).put("h", { capacity: 10, refillRate: 2, onError: "deny" }, "ops", {
      forecastGrowth: true,
      maxCapacity: 40,
    });
    const nowMs = Number(clock.nowUs() / 1000n);
    await store.putForecast({ key: "h", region: "a", expectedRate: 5, fromMs: nowMs, untilMs: nowMs + 60_000, source: "builtin" });
    const deps = { store, clock, topology: topo("a") };
    const memory: ForecasterMemory = new Map();
    expect((await runForecaster(deps, memory)).grown).toEqual(["h"]);
    // No maxRefillRate: the refill stays; capacity ⌈10·5/2⌉ = 25 (under maxCapacity 40).
    expect((await store.getConfig("h"))?.limits).toMatchObject({ capacity: 25, refillRate: 2 });
    clock.advanceMs(120_000);
    expect((await runForecaster(deps, memory)).restored).toEqual(["h"]);
    expect((await store.getConfig("h"))?.limits).toMatchObject({ capacity: 10, refillRate: 2 });
  });

  it("a run that runs out of time resumes from its checkpoint, and every predictive throttle is restored exactly once (1,200 buckets)", async () => {
    const clock = new FakeClock();
    // Every read of the clock costs 1 ms: a pass over 1,200 buckets cannot fit a 300 ms budget.
    const ticking = tickingClock(clock);
    const store = new MemoryBucketStore("a");
    const deps = { store, clock: ticking, topology: topo("a") };
    const admin = new BucketAdmin({ store, clock, topology: topo("a") });
    const n = 1200;
    for (let i = 0; i < n; i++) {
      const key = `b${String(i).padStart(4, "0")}`;
      await admin.put(key, { capacity: 100, refillRate: 50, onError: "deny" }, "ops", { predictive: true, minRefillRate: 10 });
      const nowMs = Number(clock.nowUs() / 1000n);
      await handleForecastEvent(deps, {
        "detail-type": "tokenbank.forecast",
        detail: { key, region: "b", expectedRate: 200, from: nowMs, until: nowMs + 60_000 },
      });
    }
    expect((await store.getConfig("b0000"))?.limits.refillRate).toBe(10);
    clock.advanceMs(120_000); // every surge is over
    const memory: ForecasterMemory = new Map();
    const runs = [];
    for (let run = 0; run < 50; run++) {
      const r = await runForecaster(deps, memory, { budgetMs: 300, pageSize: 100 });
      runs.push(r);
      if (r.complete) break;
    }
    expect(runs.length).toBeGreaterThan(1); // the first run stopped for time
    expect(runs[0]?.complete).toBe(false);
    expect(runs.at(-1)?.complete).toBe(true);
    const restored = runs.flatMap((r) => r.restored);
    expect(new Set(restored).size).toBe(n);
    expect(restored.length).toBe(n); // a bucket visited twice across runs is not restored twice
    for (const key of ["b0000", "b0600", "b1199"]) {
      expect((await store.getConfig(key))?.limits.refillRate).toBe(50);
      expect((await store.history(key)).map((h) => h.by)).toEqual(["ops", "forecaster:throttle", "forecaster:restore"]);
    }
    expect(await store.getCheckpoint("forecast")).toBeUndefined(); // a complete pass clears it
  });

  it("forecastGrowth needs a max bound and excludes predictive throttling (400, nothing written)", async () => {
    const store = new MemoryBucketStore("a");
    const admin = new BucketAdmin({ store, clock: new FakeClock(), topology: topo("a") });
    const l = { capacity: 10, refillRate: 1, onError: "deny" as const };
    await expect(admin.put("x", l, "ops", { forecastGrowth: true })).rejects.toThrow(/maxCapacity and\/or maxRefillRate/);
    await expect(admin.put("x", l, "ops", { forecastGrowth: true, predictive: true, maxCapacity: 20, minRefillRate: 0.5 })).rejects.toThrow(
      /not both/,
    );
    expect(await store.getConfig("x")).toBeUndefined();
  });

  it("Holt's built-in forecast writes a forecast when demand ramps up", async () => {
    const { clock, store, memory, deps } = await oneForecastSlice();
    let requested = 0n;
    let forecasts = 0;
    for (let minute = 0; minute < 6; minute++) {
      requested += BigInt(60 * 10 * (minute + 1) ** 2) * TOKEN; // 10, 40, 90, … requests/s: a ramp
      const row = (await store.getSlice("k")) as StoredSlice;
      await store.recordDenied("k", requested - row.requested, clock.nowUs());
      forecasts += (await runForecaster(deps, memory, { periodMs: 60_000 })).forecasts.length;
      clock.advanceMs(60_000);
    }
    expect(forecasts).toBeGreaterThan(0);
    expect((await store.forecasts("k"))[0]).toMatchObject({ region: "a", source: "builtin" });
  });

  it("ignores one burst: a single rise then a fall is not a ramp, so no built-in forecast holds share where demand has left", async () => {
    const { clock, store, memory, deps } = await oneForecastSlice();
    let forecasts = 0;
    // A trickle of 1/s, one period at 200/s, then the trickle again (the rotating-bursts shape).
    for (const rate of [1, 1, 1, 200, 1, 1, 1]) {
      await store.recordDenied("k", BigInt(10 * rate) * TOKEN, clock.nowUs()); // 10 s at `rate`
      forecasts += (await runForecaster(deps, memory, { periodMs: 10_000 })).forecasts.length;
      clock.advanceMs(10_000);
    }
    expect(forecasts).toBe(0);
    expect(await store.forecasts("k")).toEqual([]);
  });
});
