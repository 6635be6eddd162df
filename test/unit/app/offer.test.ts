/**
 * Direct delivery of donor gives (ARCHITECTURE.md §3): a donor's merge pass stores each give it
 * plans as an invite and offers it to the receiver; the receiver collects it from the giver,
 * which writes the give then and answers it, so the share is in flight for half a round trip
 * instead of a replication delay (or, before invites, a round trip and a half), while it neither
 * serves nor refills. Two regions over memory stores, replication applied by hand, the peer
 * calls wired in process.
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
const limits = { capacity: 100, refillRate: 5, onError: "deny" as const };
const rules = parseRules({ rules: [{ name: "r", key: "{{ .Key }}", capacity: 100, refillRate: 5 }] }, "test");

/** a holds a full slice of the bucket (a half with two regions); b has spent 20 of its 50 tokens; each has seen the other's row. */
async function world(options: { offersFail?: boolean; inviteTtlMs?: number; regions?: string[] } = {}) {
  const REGIONS = options.regions ?? ["a", "b"];
  const clock = new FakeClock();
  const topology = (self: string): Topology => ({ self, regions: REGIONS });
  const stores = new Map(REGIONS.map((r) => [r, new MemoryBucketStore(r)]));
  const mergers = new Map<string, Merger>();
  const sent: { from: string; to: string; offer: Offer }[] = [];
  const transfer = (self: string): PeerTransfer => ({
    borrow: (peer, request) => (mergers.get(peer) as Merger).lend({ ...request, borrower: self }),
    offer: async (peer, offer) => {
      if (options.offersFail) throw new Error("unreachable");
      sent.push({ from: self, to: peer, offer }); // held until the test delivers it
    },
  });
  /** Delivers every offer sent so far: each receiver collects from its giver. */
  const deliver = async () => {
    const out = [];
    for (const s of sent.splice(0)) out.push(await (mergers.get(s.to) as Merger).collect(s.offer));
    return out;
  };
  for (const r of REGIONS) {
    const store = stores.get(r) as MemoryBucketStore;
    await store.createSlice(makeSlice(KEY, topology(r), limits, { kind: "rule", rule: "r" }, clock.nowUs()));
    mergers.set(r, new Merger({ store, clock, topology: topology(r), rules, transfer: transfer(r), inviteTtlMs: options.inviteTtlMs }));
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
  return { clock, mergers, sent, deliver, row, replicate, store };
}

describe("direct delivery of donor gives", () => {
  it("a full donor's give waits as an invite and is written when the receiver collects it, before replication; replication then adds nothing", async () => {
    const w = await world();
    const before = await w.row("b");
    const start = await w.row("a");
    await w.replicate("b", "a"); // a sees b's room: a, full, hands its refill on
    // The pass planned a give of rate to b but did not write it: it waits as an invite, offered to b.
    const invite = await w.store("a").getInvite(KEY, "b");
    expect(invite?.rate).toBeGreaterThan(0n);
    expect(invite).toMatchObject({ giver: "a", receiver: "b", cap: 0n, base: { cap: 0n, rate: 0n, tokens: 0n } });
    expect((await w.row("a")).version).toBe(start.version);
    expect(w.sent).toEqual([{ from: "a", to: "b", offer: { key: KEY, giver: "a" } }]);
    expect(w.mergers.get("a")?.stats).toMatchObject({ offers: 1, invites: 1, gives: 0 });
    // b collects: a writes the give in that call and answers it, b merges it.
    expect(await w.deliver()).toEqual([true]);
    const donor = await w.row("a");
    expect(donor.gives.b?.rate).toBe(invite?.rate);
    expect(donor.writer).toBe("give");
    expect(donor.rateShare).toBe(start.rateShare - (invite?.rate ?? 0n));
    const after = await w.row("b");
    expect(after.rateShare).toBe(before.rateShare + (invite?.rate ?? 0n));
    expect(after.takes.a?.rate).toBe(invite?.rate);
    expect(after.writer).toBe("collect");
    expect(w.mergers.get("b")?.stats.collects).toBe(1);
    // Replication of the same give, later: nothing left above the watermark.
    await w.replicate("a", "b");
    expect((await w.row("b")).rateShare).toBe(after.rateShare);
    // Collecting again merges nothing, and the giver gives nothing more (the invite was spent).
    expect(await w.mergers.get("b")?.collect({ key: KEY, giver: "a" })).toBe(false);
    expect((await w.row("a")).version).toBe(donor.version);
  });

  it("an offer that cannot be sent leaves the give to the next pass, written at once and delivered by replication", async () => {
    const w = await world({ offersFail: true });
    const before = await w.row("b");
    await w.replicate("b", "a"); // the pass invites, the offer fails: the pass itself does not
    expect((await w.row("a")).gives.b).toBeUndefined();
    w.clock.advanceMs(100);
    await w.replicate("b", "a"); // the next pass gives directly
    const given = (await w.row("a")).gives.b?.rate ?? 0n;
    expect(given).toBeGreaterThan(0n);
    expect((await w.row("a")).writer).toBe("merge");
    expect((await w.row("b")).rateShare).toBe(before.rateShare);
    await w.replicate("a", "b");
    expect((await w.row("b")).rateShare).toBe(before.rateShare + given);
  });

  it("an invite nobody collects within inviteTtlMs is given by the next pass, and a late collect then gives nothing more", async () => {
    const w = await world({ inviteTtlMs: 500 });
    await w.replicate("b", "a");
    const invite = await w.store("a").getInvite(KEY, "b");
    w.clock.advanceMs(200);
    await w.replicate("b", "a"); // still waiting for the collect: no second invite, no give
    expect(w.mergers.get("a")?.stats.invites).toBe(1);
    expect((await w.row("a")).gives.b).toBeUndefined();
    w.clock.advanceMs(400);
    await w.replicate("b", "a"); // 600 ms: given directly
    const donor = await w.row("a");
    expect(donor.gives.b?.rate).toBeGreaterThan(0n);
    // Two offers wait: the invite's and the direct give's. The late collects: the invite no longer
    // holds (expired, and b was given to since), so a gives nothing more; b merges the direct give
    // ahead of replication once.
    expect(w.sent).toHaveLength(2);
    expect(await w.deliver()).toEqual([true, false]);
    expect((await w.row("a")).version).toBe(donor.version);
    expect((await w.row("b")).takes.a).toEqual(donor.gives.b);
    expect(invite?.rate).toBeGreaterThan(0n);
  });

  it("trusts nothing in an offer or a collect but a peer's name: only the giver's own fresh invite moves share", async () => {
    const w = await world({ inviteTtlMs: 500 });
    const b = w.mergers.get("b") as Merger;
    const a = w.mergers.get("a") as Merger;
    const before = await w.row("b");
    expect(await b.collect({ key: KEY, giver: "b" })).toBe(false);
    expect(await b.collect({ key: KEY, giver: "mars" })).toBe(false);
    expect(await b.collect({ key: "elsewhere", giver: "a" })).toBe(false);
    // No invite yet: the collect asks a, which answers what it gave (nothing) and writes nothing.
    const start = await w.row("a");
    expect(await b.collect({ key: KEY, giver: "a" })).toBe(false);
    expect((await w.row("b")).version).toBe(before.version);
    expect((await w.row("a")).version).toBe(start.version);
    // A collect lends and creates nothing, even for a key a rule would make.
    expect(await a.lend({ key: "elsewhere", borrower: "b", demand: 0, collect: true })).toMatchObject({ ok: false });
    expect(await w.store("a").getSlice("elsewhere")).toBeUndefined();
    // An invite exists now; a giver that denied within its deny guard keeps its share and answers only what it gave.
    await w.replicate("b", "a");
    expect(await w.store("a").getInvite(KEY, "b")).toBeDefined();
    await w.store("a").recordDenied(KEY, 1n, w.clock.nowUs());
    const denying = await w.row("a");
    expect(await a.lend({ key: KEY, borrower: "b", demand: 1000, needTokens: 100, collect: true })).toMatchObject({
      ok: true,
      lent: false,
      given: { cap: 0n, rate: 0n, tokens: 0n },
    });
    expect((await w.row("a")).version).toBe(denying.version);
    // Past the deny guard but past the invite's life: still nothing (the next pass decides again).
    w.clock.advanceMs(600);
    expect(await a.lend({ key: KEY, borrower: "b", demand: 1000, collect: true })).toMatchObject({ ok: true, lent: false });
    expect((await w.row("a")).version).toBe(denying.version);
  });

  it("an invite whose giver has since handed share to another region gives nothing: the giver no longer holds what it planned from", async () => {
    const w = await world({ regions: ["a", "b", "c"] });
    await w.replicate("c", "a"); // a plans only once it has seen every peer's row
    await w.replicate("b", "a");
    const invite = await w.store("a").getInvite(KEY, "b");
    expect(invite?.rate).toBeGreaterThan(0n);
    // c borrows from a before b collects: a lends c capacity (and the tokens it carries).
    const lent = await w.mergers.get("a")?.lend({ key: KEY, borrower: "c", demand: 1000, needTokens: 30 });
    expect(lent).toMatchObject({ ok: true, lent: true });
    const donor = await w.row("a");
    expect(donor.gives.b).toBeUndefined();
    expect(donor.capShare < (invite?.heldCap ?? 0n) || donor.rateShare < (invite?.heldRate ?? 0n)).toBe(true);
    // b's collect finds a fresh invite with an unchanged base, but a holds less than it planned from.
    expect(await w.deliver()).toEqual([false]);
    expect((await w.row("a")).version).toBe(donor.version);
    expect((await w.row("a")).gives.b).toBeUndefined();
  });
});
