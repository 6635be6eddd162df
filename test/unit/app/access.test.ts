/**
 * Least privilege that is tested: each deployed function's use cases run against a store that
 * refuses every method outside the function's entry in `FUNCTION_STORE_ACCESS` (the map its IAM
 * policy is built from). A use case that starts calling another method fails here first.
 */
import { afterEach, describe, expect, it } from "vitest";
import { FUNCTION_STORE_ACCESS, type TableFunction } from "../../../lambda/access.js";
import type { StoreMethod } from "../../../lambda/adapters/dynamodb/actions.js";
import { MemoryBucketStore } from "../../../lambda/adapters/memory/store.js";
import { BucketAdmin } from "../../../lambda/app/buckets.js";
import { type ForecasterMemory, handleForecastEvent, runForecaster } from "../../../lambda/app/forecasting.js";
import { Limiter } from "../../../lambda/app/limiter.js";
import { Merger } from "../../../lambda/app/merger.js";
import { makeSlice } from "../../../lambda/app/new-row.js";
import { reconcile } from "../../../lambda/app/reconciler.js";
import { bucketStatus } from "../../../lambda/app/status.js";
import type { Topology } from "../../../lambda/app/topology.js";
import { parseRules } from "../../../lambda/core/rules.js";
import type { BucketStore } from "../../../lambda/ports/bucket-store.js";
import { FakeClock } from "../../helpers/fake-clock.js";

/** Every refused call, even one a use case catches (a borrow treats any failure as "denied for now"). */
let refused: string[] = [];
afterEach(() => {
  const seen = refused;
  refused = [];
  expect(seen).toEqual([]);
});

/** `store` as `fn`'s role sees it: methods outside its map throw; `used` records the rest. */
function guarded(store: MemoryBucketStore, fn: TableFunction, used: Set<string>): BucketStore & MemoryBucketStore {
  const allowed = new Set<string>(FUNCTION_STORE_ACCESS[fn]);
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof prop !== "string" || typeof value !== "function" || prop === "stats" || prop === "putReplica" || prop === "peek") {
        return typeof value === "function" ? value.bind(target) : value;
      }
      if (!allowed.has(prop)) {
        refused.push(`${fn}: ${prop}`);
        throw new Error(`AccessDenied: the ${fn} function calls store.${prop}, which its role does not allow`);
      }
      used.add(prop);
      return value.bind(target);
    },
  });
}

const topo = (self: string): Topology => ({ self, regions: ["a", "b"] });
const rules = parseRules({ rules: [{ name: "agent", key: "agent-{{ .Key }}", capacity: 4, refillRate: 1 }] }, "test");
const limits = { capacity: 10, refillRate: 1, onError: "deny" as const };

describe("each function's store access is within its IAM map", () => {
  it("rate (with borrow) and transfer: take, create, idempotency, denied demand, multi-bucket, borrow and lend", async () => {
    const clock = new FakeClock();
    const [rateUsed, lendUsed] = [new Set<string>(), new Set<string>()];
    const raw = { a: new MemoryBucketStore("a"), b: new MemoryBucketStore("b") };
    const lender = new Merger({ store: guarded(raw.b, "transfer", lendUsed), clock, topology: topo("b"), rules });
    const limiter = new Limiter({
      store: guarded(raw.a, "rate", rateUsed),
      clock,
      rules,
      topology: topo("a"),
      borrow: { transfer: { borrow: (_peer, request) => lender.lend(request) } },
    });
    const body = { headers: {}, tokens: 1 };
    for (let i = 0; i < 8; i++) await limiter.rate({ ...body, key: "x" }); // create, take, run dry, borrow, deny
    await limiter.rate({ ...body, key: "x", idempotencyKey: "once" });
    await limiter.rate({ ...body, key: "x", idempotencyKey: "once" });
    await limiter.rate({ ...body, key: "x", tokens: 0 });
    clock.advanceMs(2000);
    await limiter.rate({ ...body, key: "x", tokens: 3 });
    // The rules file changed the rule's limits: the rate function re-bases the slice it made.
    const changed = parseRules({ rules: [{ name: "agent", key: "agent-{{ .Key }}", capacity: 8, refillRate: 1 }] }, "test");
    await new Limiter({ store: guarded(raw.a, "rate", rateUsed), clock, rules: changed, topology: topo("a") }).rate({ ...body, key: "x" });
    expect(rateUsed).toContain("rewriteSlice");
    expect(rateUsed).toContain("claimBucket");
    expect(rateUsed).toContain("take");
    expect(rateUsed).toContain("querySlices"); // it borrowed
    expect(lendUsed).toContain("createSlice"); // the lender had never served the key
  });

  it("buckets: put, patch, get, history, delete", async () => {
    const used = new Set<string>();
    const admin = new BucketAdmin({
      store: guarded(new MemoryBucketStore("a"), "buckets", used),
      clock: new FakeClock(),
      topology: topo("a"),
    });
    await admin.put("k", limits, "ops", { maxCapacity: 20 });
    await admin.patch("k", { capacity: 12 }, "ops");
    await admin.get("k");
    await admin.history("k");
    await admin.delete("k");
    expect(used).toContain("history");
  });

  it("status: a bucket held grown by a forecast (config and history read)", async () => {
    const clock = new FakeClock();
    const raw = new MemoryBucketStore("a");
    await new BucketAdmin({ store: raw, clock, topology: topo("a") }).put("k", limits, "ops", { forecastGrowth: true, maxCapacity: 40 });
    const nowMs = Number(clock.nowUs() / 1000n);
    await handleForecastEvent(
      { store: raw, clock, topology: topo("a") },
      {
        "detail-type": "tokenbank.forecast",
        detail: { key: "k", region: "b", expectedRate: 5, from: nowMs, until: nowMs + 60_000 },
      },
    );
    const used = new Set<string>();
    const status = await bucketStatus({ store: guarded(raw, "status", used), clock, topology: topo("a") }, "k");
    expect(status.scaling?.by).toBe("forecaster:grow");
    expect(used).toContain("history");
  });

  it("merge: a peer's row, a config, a forecast and a deleted config", async () => {
    const clock = new FakeClock();
    const used = new Set<string>();
    const raw = new MemoryBucketStore("a");
    const merger = new Merger({ store: guarded(raw, "merge", used), clock, topology: topo("a") });
    await raw.createSlice(makeSlice("k", topo("a"), limits, { kind: "rule", rule: "r" }, clock.nowUs()));
    const peer = makeSlice("k", topo("b"), limits, { kind: "rule", rule: "r" }, clock.nowUs());
    raw.putReplica(peer);
    await merger.apply([{ id: "1", kind: "slice", slice: peer }]);
    const config = {
      key: "k",
      limits: { ...limits, capacity: 20 },
      version: 1,
      updatedAt: Number(clock.nowUs() / 1000n),
      updatedBy: "ops",
      origin: "b",
    };
    await merger.apply([{ id: "2", kind: "config", config }]);
    const fromMs = Number(clock.nowUs() / 1000n);
    await merger.apply([
      { id: "3", kind: "forecast", forecast: { key: "k", region: "b", expectedRate: 9, fromMs, untilMs: fromMs + 1000, source: "event" } },
    ]);
    await merger.rebalanceNow("k");
    await merger.apply([{ id: "4", kind: "config-removed", key: "k" }]);
    expect(used).toContain("rewriteSlice");
  });

  it("merge and transfer with direct delivery: the pass invites and offers, the receiver collects, the giver gives", async () => {
    const clock = new FakeClock();
    const [mergeUsed, giverUsed, collectorUsed] = [new Set<string>(), new Set<string>(), new Set<string>()];
    const raw = { a: new MemoryBucketStore("a"), b: new MemoryBucketStore("b") };
    const bucket = { capacity: 100, refillRate: 5, onError: "deny" as const };
    for (const r of ["a", "b"] as const)
      await raw[r].createSlice(makeSlice("k", topo(r), bucket, { kind: "rule", rule: "r" }, clock.nowUs()));
    // Each region's transfer function: a lends (and gives invites) on a collect; b collects on an offer.
    const giver = new Merger({ store: guarded(raw.a, "transfer", giverUsed), clock, topology: topo("a") });
    const collector: Merger = new Merger({
      store: guarded(raw.b, "transfer", collectorUsed),
      clock,
      topology: topo("b"),
      transfer: { borrow: (_peer, request) => giver.lend(request), offer: async () => undefined },
    });
    const merge = new Merger({
      store: guarded(raw.a, "merge", mergeUsed),
      clock,
      topology: topo("a"),
      transfer: {
        borrow: async () => ({ ok: false, reason: "unused" }),
        offer: async (_peer, offer) => void (await collector.collect(offer)),
      },
    });
    // b spent 20 of its 50 tokens and a, full, sees it: a hands its refill on by invite.
    await new Limiter({ store: raw.b, clock, rules, topology: topo("b"), leaseMs: 0 }).rate({ key: "k", tokens: 20, headers: {} });
    raw.a.putReplica((await raw.b.getSlice("k")) as never);
    await merge.apply([{ id: "1", kind: "slice", slice: (await raw.b.getSlice("k")) as never }]);
    expect(merge.stats.invites).toBe(1);
    expect(collector.stats.collects).toBe(1);
    expect(mergeUsed).toContain("putInvite");
    expect(giverUsed).toContain("getInvite");
    expect(giverUsed).toContain("adjustSlice");
  });

  it("heartbeat, reconcile (with eviction) and forecast (scheduled run and events)", async () => {
    const clock = new FakeClock();
    const raw = new MemoryBucketStore("a");
    const [beatUsed, recUsed, fcUsed] = [new Set<string>(), new Set<string>(), new Set<string>()];
    await guarded(raw, "heartbeat", beatUsed).putHeartbeat(clock.nowUs());
    await raw.createSlice(makeSlice("k", topo("a"), limits, { kind: "rule", rule: "r" }, clock.nowUs()));
    raw.putReplica(makeSlice("k", topo("b"), limits, { kind: "rule", rule: "r" }, clock.nowUs()));
    raw.putReplica(makeSlice("lost", topo("b"), limits, { kind: "rule", rule: "r" }, clock.nowUs())); // a row of ours is missing
    clock.advanceMs(600_000);
    await reconcile({ store: guarded(raw, "reconcile", recUsed), clock, topology: topo("a") }, { quietMs: 1000 });
    await reconcile({ store: guarded(raw, "reconcile", recUsed), clock, topology: topo("a") }, { evict: "b", force: true });
    const fc = { store: guarded(raw, "forecast", fcUsed), clock, topology: topo("a") };
    await new BucketAdmin({ store: raw, clock, topology: topo("a") }).put("g", limits, "ops", { forecastGrowth: true, maxCapacity: 40 });
    const nowMs = Number(clock.nowUs() / 1000n);
    await handleForecastEvent(fc, {
      "detail-type": "tokenbank.forecast",
      detail: { key: "g", region: "b", expectedRate: 5, from: nowMs, until: nowMs + 30_000 },
    });
    const memory: ForecasterMemory = new Map();
    await runForecaster(fc, memory);
    clock.advanceMs(120_000);
    await runForecaster(fc, memory);
    expect(beatUsed).toEqual(new Set(["putHeartbeat"]));
    expect(recUsed).toContain("scanAll");
    expect(fcUsed).toContain("putConfig");
  });

  it("the guard itself refuses a method outside the map", async () => {
    const store = guarded(new MemoryBucketStore("a"), "heartbeat", new Set());
    await expect(async () => store.getSlice("k")).rejects.toThrow(/heartbeat function calls store.getSlice/);
    expect(refused).toEqual(["heartbeat: getSlice"]);
    refused = [];
    const methods: StoreMethod[] = ["getSlice"];
    expect(FUNCTION_STORE_ACCESS.heartbeat).not.toContain(methods[0]);
  });
});
