/**
 * The local multi-region system (real handlers, DynamoDB Local, Global Tables and event-source
 * emulators): the global bound under lag, partitions and heal, merges under a hot key.
 */

import { randomUUID } from "node:crypto";
import { afterEach, describe, expect, inject, it } from "vitest";
import type { LimiterStats } from "../../lambda/app/limiter.js";
import { worstOverAdmission } from "../../lambda/core/accuracy.js";
import { checkInvariants, escrowAdjust, give } from "../../lambda/core/escrow.js";
import { parseRules } from "../../lambda/core/rules.js";
import type { StoredSlice } from "../../lambda/ports/bucket-store.js";
import { type LocalSystem, startLocalSystem } from "../../local/system.js";
import { timeToFollow } from "../../sim/engine.js";
import { pacedLoad } from "../helpers/load.js";

const REGIONS = ["us-east-1", "eu-central-1"];
let system: LocalSystem | undefined;
afterEach(async () => {
  await system?.stop();
  system = undefined;
});

async function start(lagMs = 800): Promise<LocalSystem> {
  system = await startLocalSystem({
    regions: REGIONS,
    rules: [],
    basePort: 0,
    controlPort: 0,
    lagMs,
    dynamoEndpoint: inject("dynamoEndpoint"),
    tableName: `mr-${randomUUID().slice(0, 8)}`,
  });
  return system;
}

const put = (url: string, key: string, body: unknown) =>
  fetch(`${url}/buckets/${key}`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
const json = async (url: string, init?: RequestInit) => (await fetch(url, init)).json() as Promise<Record<string, unknown>>;

/** Both replicas agree on every slice row of `key`: the rows of a converged snapshot, or undefined. */
async function converged(sys: LocalSystem, key: string): Promise<StoredSlice[] | undefined> {
  const views = await Promise.all(sys.regions.map((r) => r.store.querySlices(key)));
  const canon = (rows: StoredSlice[]) =>
    JSON.stringify(
      rows
        .map((r) => ({
          region: r.region,
          cs: r.capShare,
          rs: r.rateShare,
          x: r.mark,
          e: r.epochUs,
          v: r.version,
          gv: r.gives,
          tk: r.takes,
        }))
        .sort((a, b) => a.region.localeCompare(b.region)),
      (_k, v) => (typeof v === "bigint" ? v.toString() : v),
    );
  const first = views[0] as StoredSlice[];
  if (first.length !== REGIONS.length) return undefined;
  return views.every((v) => canon(v) === canon(first)) ? first : undefined;
}

describe("local multi-region system", () => {
  it("two regions, lag 800 ms, both hammered at 3× the refill rate for 10 s: at most C + r·10 admitted", async () => {
    const sys = await start(800);
    const [a, b] = sys.regions;
    expect((await put(a?.url as string, "global", { capacity: 20, refillRate: 10 })).status).toBe(201);
    await new Promise((r) => setTimeout(r, 1500)); // the config reaches the other region
    const run = await pacedLoad([a?.url as string, b?.url as string], { key: "global" }, 15, 10_000);
    const seconds = (run.endMs - run.startMs) / 1000;
    const bound = 20 + 10 * seconds;
    console.log(
      `admitted ${run.admitted.length} of ${run.sent} in ${seconds.toFixed(2)} s; bound C + r·t = ${bound.toFixed(1)}; per region ${REGIONS.map((_, i) => run.admitted.filter((x) => x.region === i).length).join(" / ")}`,
    );
    expect(run.admitted.length).toBeLessThanOrEqual(bound);
    expect(run.admitted.length).toBeGreaterThan(0.6 * bound); // and it is not a static trickle
    for (let i = 0; i < 2; i++) expect(run.admitted.filter((x) => x.region === i).length).toBeGreaterThan(0);
  });

  it("partition for 10 s under load: both serve, nothing over-admits, status degraded; after heal I1 holds on a converged snapshot within 3× lag", async () => {
    const sys = await start(800);
    const [a, b] = sys.regions;
    await put(a?.url as string, "split", { capacity: 20, refillRate: 10 });
    await new Promise((r) => setTimeout(r, 1500));
    const statuses: Record<number, number[]> = { 0: [], 1: [] };
    const load = pacedLoad([a?.url as string, b?.url as string], { key: "split" }, 15, 14_000, (region, status) => {
      (statuses[region] as number[]).push(status);
    });
    await new Promise((r) => setTimeout(r, 2000));
    await json(`${sys.controlUrl}/partition`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ region: "eu-central-1" }),
    });
    const atCut = [statuses[0]?.length ?? 0, statuses[1]?.length ?? 0];
    await new Promise((r) => setTimeout(r, 6000));
    const during = await json(`${a?.url}/status/split`);
    expect(during.degraded).toBe(true);
    expect(during.unreachable).toEqual(["eu-central-1"]);
    await new Promise((r) => setTimeout(r, 4000));
    // Both regions kept admitting while cut off from each other.
    for (const i of [0, 1]) expect((statuses[i] as number[]).slice(atCut[i]).filter((s) => s === 200).length).toBeGreaterThan(0);
    const healedAt = Date.now();
    await json(`${sys.controlUrl}/heal`, { method: "POST" });
    const run = await load;
    const seconds = (run.endMs - run.startMs) / 1000;
    expect(run.admitted.length).toBeLessThanOrEqual(20 + 10 * seconds);
    // Converge: both replicas agree, and I1 holds exactly.
    let rows: StoredSlice[] | undefined;
    while (!rows && Date.now() - healedAt < 20_000) {
      rows = await converged(sys, "split");
      if (!rows) await new Promise((r) => setTimeout(r, 50));
    }
    const convergedMs = Date.now() - healedAt;
    console.log(
      `partition: admitted ${run.admitted.length} of ${run.sent} in ${seconds.toFixed(1)} s (bound ${(20 + 10 * seconds).toFixed(0)}); converged ${convergedMs} ms after heal (load ran ${run.endMs - healedAt} ms of it)`,
    );
    expect(rows).toBeDefined();
    expect(checkInvariants(rows as StoredSlice[], 20n, () => BigInt(Date.now()) * 1000n).filter((v) => v.invariant === "I1")).toEqual([]);
    expect(convergedMs - Math.max(0, run.endMs - healedAt)).toBeLessThanOrEqual(3 * 800);
    const after = await json(`${a?.url}/status/split`);
    expect(after.degraded).toBe(false);
  });

  it("merges land under a hot key: 64 clients in one region, gives arriving from the other", async () => {
    const sys = await start(200);
    const [a, b] = sys.regions;
    // Never full (refill 1/s): every take is the commuting increment form. (An always-full bucket under
    // 64 clients collides on the absolute "full" form instead: ~2 writes per decision, see docs/architecture.md.)
    await put(a?.url as string, "hot", { capacity: 1_000_000_000, refillRate: 1 });
    await new Promise((r) => setTimeout(r, 1000));
    type Stats = { decisions: number; calls: number; oneCall: number; noCall: number; failed: number };
    const snap = (): Stats => {
      const s = a?.limiter.stats as LimiterStats;
      const failed = Object.values(s.failures).reduce((x, y) => x + y, 0);
      return { decisions: s.decisions, calls: s.calls, oneCall: s.oneCall, noCall: s.noCall, failed };
    };
    const diff = (x: Stats, y: Stats) => ({
      decisions: y.decisions - x.decisions,
      calls: y.calls - x.calls,
      oneCall: y.oneCall - x.oneCall,
      noCall: y.noCall - x.noCall,
      failed: y.failed - x.failed,
    });
    let stop = false;
    const clients = Array.from({ length: 64 }, async () => {
      while (!stop) {
        const res = await fetch(`${a?.url}/rate`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: '{"key":"hot"}',
        });
        await res.arrayBuffer();
      }
    });
    // Phase 1: the hot key alone, once the idle region has donated its excess (a merge) and rebalancing is quiet.
    await new Promise((r) => setTimeout(r, 3000));
    const s0 = snap();
    await new Promise((r) => setTimeout(r, 3000));
    const s1 = snap();
    // Phase 2: eu-central-1 gives a little share every 500 ms (one commuting write each); us-east-1 must merge them under the load.
    const mergesBefore = a?.merger.stats.merges ?? 0;
    let gives = 0;
    for (let i = 0; i < 8; i++) {
      await new Promise((r) => setTimeout(r, 500));
      for (;;) {
        const now = BigInt(Date.now()) * 1000n;
        const row = (await b?.store.getSlice("hot")) as StoredSlice;
        const next = give(row, "us-east-1", 1000n, 1000n, now);
        const plan = escrowAdjust(row, next, now);
        if (plan && (await b?.store.adjustSlice("hot", plan, next, "merge"))?.ok) break;
      }
      gives++;
    }
    await new Promise((r) => setTimeout(r, 1500));
    const s2 = snap();
    stop = true;
    await Promise.all(clients);
    const alone = diff(s0, s1);
    const merging = diff(s1, s2);
    const merges = (a?.merger.stats.merges ?? 0) - mergesBefore;
    const ours = (await a?.store.getSlice("hot")) as StoredSlice;
    const theirs = (await b?.store.getSlice("hot")) as StoredSlice;
    // Take writes that failed while merges landed (leases answer most decisions without a call,
    // so calls per decision no longer show what a merge costs).
    const extraPerMerge = merging.failed / Math.max(1, merges);
    console.log(
      `hot key, 64 clients: alone ${alone.decisions} decisions, ${(alone.oneCall / alone.decisions).toFixed(3)} with exactly one write (${(alone.calls / alone.decisions).toFixed(3)} calls/decision); ` +
        `with merges ${merging.decisions} decisions, ${(merging.oneCall / merging.decisions).toFixed(3)} with one write, ${merges} merges landed for ${gives} gives, ${extraPerMerge.toFixed(1)} failed takes per merge`,
    );
    // Every give eu-central-1 made was merged by us-east-1, under the load.
    expect(ours.takes["eu-central-1"]).toEqual(theirs.gives["us-east-1"]);
    expect(merges).toBeGreaterThanOrEqual(1);
    // Steady state: at most one write per decision (a lease answers many without one).
    expect((alone.oneCall + alone.noCall) / alone.decisions).toBeGreaterThan(0.95);
    expect(alone.calls / alone.decisions).toBeLessThanOrEqual(1.05);
    // A merge costs each request in flight at most about one failed write (64 clients), never a stall.
    expect(extraPerMerge).toBeLessThanOrEqual(2 * 64);
  });

  it("follows demand: after all demand moves to one region it admits ≥ 90% of r within 1 s (borrow) and holds > 90% of the share within 5 s", async () => {
    const sys = await start(800);
    const [a, b] = sys.regions;
    await put(a?.url as string, "sun", { capacity: 20, refillRate: 10 });
    await new Promise((r) => setTimeout(r, 1500));
    // Phase 1: all demand in us-east-1 (2·r), so eu-central-1 donates down to its floor.
    await pacedLoad([a?.url as string], { key: "sun" }, 20, 6000);
    const before = (await b?.store.getSlice("sun")) as StoredSlice;
    // Phase 2: all demand moves to eu-central-1.
    const shiftMs = Date.now();
    let shareAt: number | undefined;
    const watch = (async () => {
      while (shareAt === undefined && Date.now() - shiftMs < 8000) {
        const row = await b?.store.getSlice("sun");
        if (row && row.capShare > 900_000n) shareAt = Date.now() - shiftMs;
        else await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const run = await pacedLoad([b?.url as string], { key: "sun" }, 20, 8000);
    await watch;
    const times = run.admitted.map((x) => BigInt(x.atMs) * 1000n);
    const follow = timeToFollow(times, BigInt(shiftMs) * 1000n, BigInt(run.endMs) * 1000n, 10);
    console.log(
      `follow: eu-central-1 held ${Number(before.capShare) / 1e4}% of the share before the shift; admits ≥ 90% of r ${follow} ms after it; holds > 90% of the share after ${shareAt} ms; lends ${a?.merger.stats.lends}`,
    );
    expect(before.capShare).toBeLessThan(200_000n);
    expect(follow).not.toBeNull();
    expect(follow as number).toBeLessThanOrEqual(1000);
    expect(shareAt).toBeDefined();
    expect(shareAt as number).toBeLessThanOrEqual(5000);
  });

  it("borrows from a region that has never served the key nor seen it replicated (lag 5 s): more than the static half", async () => {
    system = await startLocalSystem({
      regions: REGIONS,
      rules: parseRules({ rules: [{ name: "fresh", key: "fresh-{{ .Key }}", capacity: 20, refillRate: 10 }] }, "test"),
      basePort: 0,
      controlPort: 0,
      lagMs: 5000,
      dynamoEndpoint: inject("dynamoEndpoint"),
      tableName: `mr-${randomUUID().slice(0, 8)}`,
    });
    const [a, b] = system.regions;
    // 2·r into us-east-1 for 3 s; eu-central-1 hears nothing of the key within the test.
    const run = await pacedLoad([a?.url as string], { key: "k" }, 20, 3000);
    const lender = await b?.store.getSlice("fresh-k");
    console.log(
      `never-served lender: us-east-1 admitted ${run.admitted.length} of 60 in 3 s; eu-central-1 lent ${b?.merger.stats.lends} times`,
    );
    // Alone, us-east-1's initial half admits about 10 + 5·3 = 25 (28 measured with the lender refusing).
    expect(run.admitted.length).toBeGreaterThan(35);
    expect(run.admitted.length).toBeLessThanOrEqual(20 + 10 * 3 + 1);
    expect(lender?.limits).toEqual({ capacity: 20, refillRate: 10, onError: "deny", ttl: 3600 }); // the rule's, from its own rules file (ttl: the default)
    expect(b?.merger.stats.lends).toBeGreaterThan(0);
  });

  it("lowering capacity from 1,000 to 100 under load in two regions: after propagation no window exceeds the new bound; the history lists it", async () => {
    const sys = await start(800);
    const [a, b] = sys.regions;
    await put(a?.url as string, "cut", { capacity: 1000, refillRate: 20 });
    await new Promise((r) => setTimeout(r, 1500));
    const times: { atMs: number }[] = [];
    let changedAt = 0;
    const load = pacedLoad([a?.url as string, b?.url as string], { key: "cut" }, 40, 9000, (_region, status) => {
      if (status === 200) times.push({ atMs: Date.now() });
    });
    await new Promise((r) => setTimeout(r, 3000));
    const patched = await fetch(`${a?.url}/buckets/cut`, {
      method: "PATCH",
      headers: { "content-type": "application/json" },
      body: '{"capacity": 100}',
    });
    expect(patched.status).toBe(200);
    changedAt = Date.now();
    await load;
    // Propagation: one replication delay (+ jitter) and the merge handler.
    const after = times.map((t) => t.atMs).filter((t) => t > changedAt + 2 * 800 + 200);
    const admissions = after.map((t) => ({ atUs: BigInt(t) * 1000n, amount: 10n ** 18n }));
    const worst = worstOverAdmission(admissions, 100n * 10n ** 18n, 20n * 10n ** 12n);
    const history = (await json(`${b?.url}/buckets/cut/history`)) as {
      history: { new: { capacity: number }; old: { capacity: number } | null }[];
    };
    console.log(
      `capacity cut: ${after.length} admitted after propagation; worst window excess over C = 100 + r·t: ${Number(worst) / 1e18} tokens (at client response times)`,
    );
    expect(worst).toBeLessThanOrEqual(0n);
    expect(history.history.map((h) => [h.old?.capacity ?? null, h.new.capacity])).toEqual([
      [null, 1000],
      [1000, 100],
    ]);
  });
});
