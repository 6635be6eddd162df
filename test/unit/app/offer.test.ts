/**
 * Direct delivery of donor gives (ARCHITECTURE.md §3): a donor offers each give to its
 * receiver, which collects it from the giver itself in one round trip instead of waiting one
 * replication delay, while the share neither serves nor refills. Two regions over memory
 * stores, replication applied by hand, the peer calls wired in process.
 */
import { describe, expect, it } from "vitest";
import { MemoryBucketStore } from "../../../lambda/adapters/memory/store.js";
import { Limiter } from "../../../lambda/app/limiter.js";
import { Merger } from "../../../lambda/app/merger.js";
import { makeSlice } from "../../../lambda/app/new-row.js";
import type { Topology } from "../../../lambda/app/topology.js";
import { parseRules } from "../../../lambda/core/rules.js";
import type { StoredSlice } from "../../../lambda/ports/bucket-store.js";
import type { Offer, PeerTransfer } from "../../../lambda/ports/peer-transfer.js";
import { FakeClock } from "../../helpers/fake-clock.js";

const KEY = "k";
const REGIONS = ["a", "b"];
const limits = { capacity: 100, refillRate: 5, onError: "deny" as const };
const rules = parseRules({ rules: [{ name: "r", key: "{{ .Key }}", capacity: 100, refillRate: 5 }] }, "test");

/** a holds a full half of the bucket; b has spent 20 of its 50 tokens; each has seen the other's row. */
async function world(options: { offersFail?: boolean } = {}) {
  const clock = new FakeClock();
  const topology = (self: string): Topology => ({ self, regions: REGIONS });
  const stores = new Map(REGIONS.map((r) => [r, new MemoryBucketStore(r)]));
  const mergers = new Map<string, Merger>();
  const sent: { from: string; to: string; offer: Offer }[] = [];
  const delivered: Promise<boolean>[] = [];
  const transfer = (self: string): PeerTransfer => ({
    borrow: (peer, request) => (mergers.get(peer) as Merger).lend({ ...request, borrower: self }),
    offer: async (peer, offer) => {
      sent.push({ from: self, to: peer, offer });
      if (options.offersFail) throw new Error("unreachable");
      delivered.push((mergers.get(peer) as Merger).collect(offer));
    },
  });
  for (const r of REGIONS) {
    const store = stores.get(r) as MemoryBucketStore;
    await store.createSlice(makeSlice(KEY, topology(r), limits, { kind: "rule", rule: "r" }, clock.nowUs()));
    mergers.set(r, new Merger({ store, clock, topology: topology(r), rules, transfer: transfer(r) }));
  }
  const store = (r: string) => stores.get(r) as MemoryBucketStore;
  const row = async (r: string) => (await store(r).getSlice(KEY)) as StoredSlice;
  /** Replicates `from`'s row to `to` and runs `to`'s merge pass on it. */
  const replicate = async (from: string, to: string) => {
    const image = await row(from);
    store(to).putReplica(image);
    await (mergers.get(to) as Merger).apply([{ id: "1", kind: "slice", slice: image }]);
  };
  const limiter = new Limiter({ store: store("b"), clock, rules, topology: topology("b"), leaseMs: 0 });
  expect((await limiter.rate({ key: KEY, tokens: 20, headers: {} })).allowed).toBe(true);
  await replicate("a", "b");
  clock.advanceMs(100);
  return { clock, mergers, sent, delivered, row, replicate, store };
}

describe("direct delivery of donor gives", () => {
  it("a full donor's give of rate reaches the receiver by offer and collect, before replication, and replication then adds nothing", async () => {
    const w = await world();
    const before = await w.row("b");
    await w.replicate("b", "a"); // a sees b's room: a, full, hands its refill on
    const donor = await w.row("a");
    const given = donor.gives.b?.rate ?? 0n;
    expect(given).toBeGreaterThan(0n);
    expect(w.sent).toEqual([{ from: "a", to: "b", offer: { key: KEY, giver: "a" } }]);
    expect(await Promise.all(w.delivered)).toEqual([true]);
    const after = await w.row("b");
    expect(after.rateShare).toBe(before.rateShare + given);
    expect(after.takes.a?.rate).toBe(given);
    expect(after.writer).toBe("collect");
    expect(w.mergers.get("a")?.stats.offers).toBe(1);
    expect(w.mergers.get("b")?.stats.collects).toBe(1);
    // The giver lent nothing more while answering the collect.
    expect((await w.row("a")).version).toBe(donor.version);
    // Replication of the same give, later: nothing left above the watermark.
    await w.replicate("a", "b");
    expect((await w.row("b")).rateShare).toBe(after.rateShare);
    // Collecting again merges nothing.
    expect(await w.mergers.get("b")?.collect({ key: KEY, giver: "a" })).toBe(false);
  });

  it("a lost offer leaves the give to replication, and the donor's pass does not fail", async () => {
    const w = await world({ offersFail: true });
    const before = await w.row("b");
    await w.replicate("b", "a");
    const given = (await w.row("a")).gives.b?.rate ?? 0n;
    expect(given).toBeGreaterThan(0n);
    expect(w.sent).toHaveLength(1);
    expect((await w.row("b")).rateShare).toBe(before.rateShare);
    await w.replicate("a", "b");
    expect((await w.row("b")).rateShare).toBe(before.rateShare + given);
  });

  it("trusts nothing in an offer but a peer's name: itself, an unknown region or a bucket it does not hold move nothing", async () => {
    const w = await world();
    const b = w.mergers.get("b") as Merger;
    const before = await w.row("b");
    expect(await b.collect({ key: KEY, giver: "b" })).toBe(false);
    expect(await b.collect({ key: KEY, giver: "mars" })).toBe(false);
    expect(await b.collect({ key: "elsewhere", giver: "a" })).toBe(false);
    // Nothing given yet: the collect asks a, which answers what it gave (nothing) and writes nothing.
    expect(await b.collect({ key: KEY, giver: "a" })).toBe(false);
    expect((await w.row("b")).version).toBe(before.version);
    // A collect lends and creates nothing, even for a key a rule would make, and answers while the giver denies.
    const a = w.mergers.get("a") as Merger;
    expect(await a.lend({ key: "elsewhere", borrower: "b", demand: 0, collect: true })).toMatchObject({ ok: false });
    expect(await w.store("a").getSlice("elsewhere")).toBeUndefined();
    await w.store("a").recordDenied(KEY, 1n, w.clock.nowUs());
    expect(await a.lend({ key: KEY, borrower: "b", demand: 0, collect: true })).toMatchObject({ ok: true, lent: false });
  });
});
