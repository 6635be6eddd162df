/**
 * The stream-merge use case: a region applies what replication brings it.
 *
 * - A peer's slice row: merge what the peer has given us above our watermark (idempotent),
 *   then, as a donor, give our excess share to regions below their demand target.
 * - A config row: re-base our slice onto the new limits (or create it).
 * - A deleted config: forget our slice of that bucket.
 *
 * Every change to our own row goes through the store's freeze-then-write rewrite, so it
 * cannot starve under a hot key, and it never loses a concurrent take.
 */
import { type DemandEstimate, demandAt, observeDemand } from "../core/demand.js";
import { give, merge, NO_TRANSFER, shareCarrying, type Transfer } from "../core/escrow.js";
import { type Forecast, forecastFloor } from "../core/forecast.js";
import type { BucketLimits } from "../core/limits.js";
import {
  defaultPolicy,
  isShort,
  type PlannedGive,
  planLend,
  planRebalance,
  type RebalancePolicy,
  type RegionView,
} from "../core/rebalance.js";
import type { Rule } from "../core/rules.js";
import { level } from "../core/slice.js";
import { TOKEN } from "../core/units.js";
import type { BucketConfig, BucketStore, GeometryWriter, Invite, LimitSource, StoredSlice } from "../ports/bucket-store.js";
import type { Clock } from "../ports/clock.js";
import type { BorrowAnswer, BorrowRequest, Offer, PeerTransfer } from "../ports/peer-transfer.js";
import { adjustOwnRow } from "./adjust.js";
import { applyConfig } from "./buckets.js";
import { newOwnRow } from "./new-row.js";
import type { Topology } from "./topology.js";

/** Buckets whose demand estimates and forecasts one merger keeps in memory. */
export const MAX_TRACKED_KEYS = 10_000;

/** One change from the stream, already decoded. */
export type Change =
  | { readonly id: string; readonly kind: "slice"; readonly slice: StoredSlice }
  | { readonly id: string; readonly kind: "config"; readonly config: BucketConfig }
  | { readonly id: string; readonly kind: "config-removed"; readonly key: string }
  | { readonly id: string; readonly kind: "forecast"; readonly forecast: Forecast };

/** Options of {@link Merger}. */
export interface MergerDeps {
  readonly store: BucketStore;
  readonly clock: Clock;
  readonly topology: Topology;
  /** Rebalance between regions (off: merges only). @default true */
  readonly rebalance?: boolean;
  /** Demand EWMA half-life, µs. @default 250 ms */
  readonly halfLifeUs?: number;
  /** A region that denied within this many µs does not donate. @default 250 ms */
  readonly denyGuardUs?: bigint;
  /** A forecast floors its region's demand from this long before its start, ms. @default 3000 */
  readonly forecastLeadMs?: number;
  /** A lender that denied within this many µs refuses to lend. @default 50 ms */
  readonly lendGuardUs?: bigint;
  /** Policy override (tests, simulator). @default defaultPolicy(capacity, regions) */
  readonly policy?: (capacity: number, regions: number) => RebalancePolicy;
  /** This deployment's rules (the lender takes a rule's limits from them, never from a request). @default none */
  readonly rules?: readonly Rule[];
  /**
   * Direct calls to peers: a donor give waits as an invite and is offered to its receiver, which
   * collects it from the giver; on an offer, collecting from the giver (ARCHITECTURE.md §3,
   * "direct delivery"). @default none: gives are written at once and travel by replication only
   */
  readonly transfer?: PeerTransfer;
  /**
   * How long an invite waits for its receiver to collect it, ms: after that the giver no longer
   * gives it on a collect, and its next merge pass gives directly (replication delivers).
   * @default 1000
   */
  readonly inviteTtlMs?: number;
}

/** Defaults of `MergerDeps.denyGuardUs`, `MergerDeps.lendGuardUs` and `MergerDeps.inviteTtlMs`. */
const DENY_GUARD_US = 250_000n;
const LEND_GUARD_US = 50_000n;
const INVITE_TTL_MS = 1000;

const sameTransfer = (a: Transfer, b: Transfer): boolean => a.cap === b.cap && a.rate === b.rate && a.tokens === b.tokens;

/** Whether the row's region denied a request of its key less than `windowUs` before `now`. */
function deniedWithin(own: StoredSlice, now: bigint, windowUs: bigint): boolean {
  return own.lastDeniedUs !== undefined && now - own.lastDeniedUs < windowUs;
}

/** The peers whose counter (a row's `gives` or `takes`) a write changed: escrow operations replace only those. */
function changedPeers(before: Readonly<Record<string, Transfer>>, after: Readonly<Record<string, Transfer>>): string[] {
  return Object.keys(after).filter((peer) => after[peer] !== before[peer]);
}

/** Counts of what the merger did, for tests and metrics. */
export interface MergeStats {
  merges: number;
  gives: number;
  configs: number;
  deletes: number;
  rewrites: number;
  lends: number;
  /** Offers sent to receivers of our donor gives (invites, and gives written directly). */
  offers: number;
  /** Donor gives planned as invites (written when their receiver collects them). */
  invites: number;
  /** Offers collected: a giver's answer merged into our row ahead of replication. */
  collects: number;
}

/** Applies replicated changes to this region's slices. */
export class Merger {
  readonly stats: MergeStats = { merges: 0, gives: 0, configs: 0, deletes: 0, rewrites: 0, lends: 0, offers: 0, invites: 0, collects: 0 };
  private readonly deps: MergerDeps;
  /** Forecasts per bucket and region (from the stream, or the scheduler). */
  private readonly predictions = new Map<string, Map<string, Forecast>>();
  /** Demand per bucket and region, from successive observations of their counters. */
  private readonly demand = new Map<string, Map<string, DemandEstimate>>();
  /** The invites this merger sent, per bucket and receiver: when, and the `gives[receiver]` they were planned on. */
  private readonly invited = new Map<string, Map<string, { readonly atUs: bigint; readonly base: Transfer }>>();

  constructor(deps: MergerDeps) {
    this.deps = deps;
  }

  /**
   * Applies a batch in order, per key. Returns the ids of the changes that failed (all the
   * changes of a key whose processing threw), for partial-batch failure reporting.
   */
  async apply(changes: readonly Change[]): Promise<string[]> {
    const byKey = new Map<string, Change[]>();
    for (const c of changes) {
      const key = c.kind === "slice" ? c.slice.key : c.kind === "config" ? c.config.key : c.kind === "forecast" ? c.forecast.key : c.key;
      byKey.set(key, [...(byKey.get(key) ?? []), c]);
    }
    const failed: string[] = [];
    for (const [key, list] of byKey) {
      try {
        await this.applyKey(key, list);
      } catch {
        failed.push(...list.map((c) => c.id));
      }
    }
    return failed;
  }

  private async applyKey(key: string, list: readonly Change[]): Promise<void> {
    const { store, topology } = this.deps;
    // Forecasts: remember them (they floor the rebalancer's demand) and re-plan now.
    let forecastArrived = false;
    for (const c of list) {
      if (c.kind === "forecast") {
        this.noteForecast(c.forecast);
        forecastArrived = true;
      }
    }
    // Configs: the last one in the batch wins (replication is last-writer-wins anyway).
    const configs = list.filter((c) => c.kind === "config" || c.kind === "config-removed");
    const lastConfig = configs[configs.length - 1];
    if (lastConfig?.kind === "config-removed") {
      await store.deleteSlice(key);
      this.stats.deletes++;
      return;
    }
    if (lastConfig?.kind === "config") await this.applyConfigChange(lastConfig.config);

    // Every image of a peer row feeds the demand estimates; any one triggers a merge pass.
    let touched = false;
    for (const c of list) {
      if (c.kind === "slice" && c.slice.region !== topology.self) {
        this.observe(c.slice);
        touched = true;
      }
    }
    if (touched || forecastArrived) await this.mergeAndRebalance(key);
  }

  /** Remembers a forecast (newest per bucket and region); ended forecasts are forgotten. */
  noteForecast(f: Forecast): void {
    const nowMs = Number(this.deps.clock.nowUs() / 1000n);
    if (this.predictions.size >= MAX_TRACKED_KEYS) {
      for (const [key, perRegion] of this.predictions) {
        for (const [region, old] of perRegion) if (old.untilMs <= nowMs) perRegion.delete(region);
        if (perRegion.size === 0) this.predictions.delete(key);
      }
      if (this.predictions.size >= MAX_TRACKED_KEYS) {
        const oldest = this.predictions.keys().next();
        if (!oldest.done) this.predictions.delete(oldest.value);
      }
    }
    const perKey = this.predictions.get(f.key) ?? new Map<string, Forecast>();
    perKey.set(f.region, f);
    this.predictions.set(f.key, perKey);
  }

  /** Re-evaluates a bucket as a donor now (the scheduler calls it so forecast windows open on time). */
  async rebalanceNow(key: string): Promise<void> {
    await this.mergeAndRebalance(key);
  }

  private async applyConfigChange(config: BucketConfig): Promise<void> {
    const own = await this.deps.store.getSlice(config.key);
    if (own?.source.kind === "override" && own.source.version === config.version && own.configAt === config.updatedAt) return;
    await applyConfig(this.deps, config);
    this.stats.configs++;
  }

  private async mergeAndRebalance(key: string): Promise<void> {
    const { store, clock, topology } = this.deps;
    // Our replica holds every region's latest replicated row (and our own, fresh).
    const rows = await store.querySlices(key);
    const peers = new Map(rows.filter((r) => r.region !== topology.self && topology.regions.includes(r.region)).map((r) => [r.region, r]));
    let own = rows.find((r) => r.region === topology.self);
    const any = [...peers.values()][0];
    if (!any) return;
    for (const peer of peers.values()) this.observe(peer);
    if (!own) {
      // A bucket born elsewhere (a rule matched there first): take our share of it (never more than is free).
      own = await store.createSlice(newOwnRow(key, topology, any.limits, any.source, clock.nowUs(), [...peers.values()], any.configAt));
    }
    this.observe(own);
    // Fenced: an operator evicted this region while it was cut off. It holds nothing from now on.
    const fence = [...peers.values()].find((p) => p.evicted?.[topology.self]);
    if (fence) {
      if (own.capShare !== 0n || own.rateShare !== 0n || !own.evicted?.[topology.self]) {
        await this.adjust(
          key,
          own,
          (row) => ({
            ...row,
            capShare: 0n,
            rateShare: 0n,
            mark: 0n,
            // The evictor absorbed what was in flight to us: never merge it.
            takes: Object.fromEntries([...peers.values()].map((p) => [p.region, p.gives[topology.self] ?? NO_TRANSFER])),
            evicted: { ...(row.evicted ?? {}), [topology.self]: { by: fence.region, cap: 0n, rate: 0n } },
          }),
          "fence",
        );
      }
      return;
    }
    // With peer calls, a donor give waits as an invite until its receiver collects it (the giver
    // writes it then): the share is in flight for half a round trip, not one and a half.
    const direct = this.deps.transfer === undefined;
    const ttlUs = BigInt(this.deps.inviteTtlMs ?? INVITE_TTL_MS) * 1000n;
    let invites: PlannedGive[] = [];
    const written = await this.adjust(
      key,
      own,
      (row, now) => {
        let next = row;
        invites = [];
        for (const p of peers.values()) next = merge(next, p.region, p.gives[topology.self] ?? NO_TRANSFER, now);
        for (const g of this.plan(next, peers, now)) {
          const sent = this.invited.get(key)?.get(g.peer);
          // An invite this pass does not see given yet: wait for its collect, for `inviteTtlMs`.
          const waiting = sent !== undefined && sameTransfer(sent.base, next.gives[g.peer] ?? NO_TRANSFER);
          if (waiting && now - sent.atUs < ttlUs) continue;
          if (!direct && !waiting) invites.push(g);
          else next = give(next, g.peer, g.cap, g.rate, now); // never collected: give, replication delivers
        }
        return next;
      },
      "merge",
    );
    if (written) {
      for (const peer of changedPeers(written.before.gives, written.after.gives)) this.invited.get(key)?.delete(peer);
      await this.offerGives(key, written.before, written.after);
    }
    if (invites.length > 0) await this.invite(key, written?.after ?? own, invites);
  }

  /**
   * Stores each planned give as an invite and offers it to its receiver, which collects it from
   * us: the give is written then ({@link lend} with `collect`). An invite that cannot be stored
   * or offered counts as never collected, so the next merge pass gives directly.
   */
  private async invite(key: string, own: StoredSlice, gives: readonly PlannedGive[]): Promise<void> {
    const { store, transfer, topology, clock } = this.deps;
    if (!transfer) return;
    const atUs = clock.nowUs();
    if (!this.invited.has(key) && this.invited.size >= MAX_TRACKED_KEYS) {
      const oldest = this.invited.keys().next();
      if (!oldest.done) this.invited.delete(oldest.value);
    }
    const perKey = this.invited.get(key) ?? new Map<string, { atUs: bigint; base: Transfer }>();
    this.invited.set(key, perKey);
    this.stats.invites += gives.length;
    this.stats.offers += gives.length;
    await Promise.all(
      gives.map(async (g) => {
        const base = own.gives[g.peer] ?? NO_TRANSFER;
        const invite: Invite = {
          key,
          giver: topology.self,
          receiver: g.peer,
          cap: g.cap,
          rate: g.rate,
          base,
          heldCap: own.capShare,
          heldRate: own.rateShare,
          atUs,
        };
        perKey.set(g.peer, { atUs, base });
        try {
          await store.putInvite(invite);
          await transfer.offer(g.peer, { key, giver: topology.self });
        } catch {
          perKey.set(g.peer, { atUs: atUs - BigInt(this.deps.inviteTtlMs ?? INVITE_TTL_MS) * 1000n, base });
        }
      }),
    );
  }

  /**
   * On a collect: writes our invite to `receiver`, if there is one this region planned within
   * `inviteTtlMs`, nothing was given to the receiver since (`base`), we still hold the shares it
   * was planned on, and we have not denied within the deny guard (we need our share now). Only
   * our own stored invite decides what moves, never the collect's payload. The row written, or
   * `undefined`.
   */
  private async giveInvited(key: string, receiver: string, own: StoredSlice): Promise<StoredSlice | undefined> {
    const { store, clock, topology } = this.deps;
    let invite: Invite | undefined;
    try {
      invite = await store.getInvite(key, receiver);
    } catch {
      return undefined; // the answer still carries what we have given
    }
    const now = clock.nowUs();
    const ttlUs = BigInt(this.deps.inviteTtlMs ?? INVITE_TTL_MS) * 1000n;
    if (!invite || invite.giver !== topology.self || invite.receiver !== receiver) return undefined;
    if (now < invite.atUs || now - invite.atUs >= ttlUs || deniedWithin(own, now, this.deps.denyGuardUs ?? DENY_GUARD_US)) return undefined;
    const planned = invite;
    const written = await this.adjust(
      key,
      own,
      (row, at) =>
        sameTransfer(row.gives[receiver] ?? NO_TRANSFER, planned.base) &&
        row.capShare >= planned.heldCap &&
        row.rateShare >= planned.heldRate
          ? give(row, receiver, planned.cap, planned.rate, at)
          : row,
      "give",
    );
    return written?.after;
  }

  /**
   * Offers each peer this write gave share to its give, so that it collects it in one round
   * trip rather than one replication delay (share in flight neither serves nor refills). A lost
   * offer costs nothing: replication still delivers the give.
   */
  private async offerGives(key: string, before: StoredSlice, after: StoredSlice): Promise<void> {
    const { transfer, topology } = this.deps;
    if (!transfer) return;
    const to = changedPeers(before.gives, after.gives).filter((r) => r !== topology.self && topology.regions.includes(r));
    this.stats.offers += to.length;
    await Promise.allSettled(to.map((peer) => transfer.offer(peer, { key, giver: topology.self })));
  }

  /**
   * Collects what a peer's offer announces: asks the giver itself for its cumulative
   * `gives[us]` (a borrow call that lends nothing) and merges the answer, as a borrower merges a
   * lender's; whichever of it and replication comes second adds nothing. Nothing in the offer is
   * trusted but the giver's name, which must be a peer, so a forged offer costs one call and
   * moves nothing. True when something merged; false on any failure (replication delivers).
   */
  async collect(offer: Offer): Promise<boolean> {
    const { store, topology, transfer } = this.deps;
    if (!transfer || offer.giver === topology.self || !topology.regions.includes(offer.giver)) return false;
    try {
      const own = await store.getSlice(offer.key);
      if (!own) return false; // a bucket we do not hold yet arrives, with the give, by replication
      const answer = await transfer.borrow(offer.giver, { key: offer.key, borrower: topology.self, demand: 0, collect: true });
      if (!answer.ok) return false;
      const written = await this.adjust(offer.key, own, (row, now) => merge(row, offer.giver, answer.given, now), "collect");
      if (written) this.stats.collects++;
      return written !== undefined;
    } catch {
      return false;
    }
  }

  /**
   * Lends to a borrower that ran dry (the lender side of a borrow): gives the share that carries
   * what the borrower says it is short of (bounded by the bucket), out of everything this region
   * holds beyond its own demand's part (an idle region lends down to zero; `planLend`), with at
   * least those tokens when the level and the share given can hold them, unless
   * this region denied a request in the last 50 ms. Within the deny guard it lends to a borrower
   * with about its own demand only a clear surplus (`lendHysteresis`).
   * Returns the cumulative `gives[borrower]` for the borrower to merge (idempotent with replication).
   */
  async lend(request: BorrowRequest): Promise<BorrowAnswer> {
    const { store, clock, topology } = this.deps;
    if (!topology.regions.includes(request.borrower) || request.borrower === topology.self) {
      return { ok: false, reason: `unknown borrower "${request.borrower}"` };
    }
    const rows = await store.querySlices(request.key);
    const peers = new Map(rows.filter((r) => r.region !== topology.self && topology.regions.includes(r.region)).map((r) => [r.region, r]));
    let own = rows.find((r) => r.region === topology.self);
    // A collect after an offer: our invite to the collector, if it still holds, is given now;
    // the answer is what we have given so far. It lends and creates nothing.
    if (request.collect === true) {
      if (!own) return { ok: false, reason: "no such bucket here" };
      const after = await this.giveInvited(request.key, request.borrower, own);
      return { ok: true, given: (after ?? own).gives[request.borrower] ?? NO_TRANSFER, lent: false };
    }
    if (!own) {
      // Never served here: take our share of the bucket (never more than is free, as on a first
      // request), then lend from it. Its limits come from what this region can read itself, its
      // replica's config or a peer's replicated row, or its own rules file by the rule's name;
      // never from the request, which anyone able to invoke the transfer function could forge.
      const bucket = await this.trustedBucket(request, [...peers.values()]);
      if (!bucket) return { ok: false, reason: "no such bucket here" };
      own = await store.createSlice(
        newOwnRow(request.key, topology, bucket.limits, bucket.source, clock.nowUs(), [...peers.values()], bucket.configAt),
      );
    }
    this.observe(own);
    const now = clock.nowUs();
    if (deniedWithin(own, now, this.deps.lendGuardUs ?? LEND_GUARD_US)) {
      return { ok: false, reason: "the lender is short itself" };
    }
    // A borrower's demand and need weigh in the split; bounded, so a forged figure cannot claim
    // more than a bucket could ever use (its capacity and refill, ten times over).
    const bound = 10 * Math.max(own.limits.capacity, own.limits.refillRate);
    const clampTo = (x: number | undefined, max: number) => Math.min(Math.max(0, x ?? 0), max);
    const needTokens = clampTo(request.needTokens, own.limits.capacity);
    const fair = { ...request, demand: Math.max(clampTo(request.demand, bound), needTokens) };
    const needAt = BigInt(Math.ceil(needTokens * 1e6)) * 1_000_000_000_000n; // whole tokens → aT, rounded up
    const written = await this.adjust(
      request.key,
      own,
      (row, at) => {
        const views = this.views(row, peers, at, fair);
        const byTokens = shareCarrying(row, needAt, at);
        const byRoom = BigInt(Math.ceil(clampTo(request.needShare, 1_000_000)));
        const planned = planLend(topology.self, request.borrower, views, {
          capShare: byTokens > byRoom ? byTokens : byRoom,
          lenderDenying: deniedWithin(row, at, this.deps.denyGuardUs ?? DENY_GUARD_US),
          hysteresis: this.policyFor(row).lendHysteresis,
        });
        if (planned) this.stats.lends++;
        // The tokens the borrower is short of travel with whatever share it gets, even beyond
        // that share's proportional part of our level: after a burst a lender may hold most of the
        // capacity but few tokens, and a proportional cut would carry a fraction of a token.
        return planned ? give(row, planned.peer, planned.cap, planned.rate, at, needAt) : row;
      },
      "lend",
    );
    // `written` is undefined when nothing was given (the change was a no-op).
    return { ok: true, given: (written?.after ?? own).gives[request.borrower] ?? NO_TRANSFER, lent: written !== undefined };
  }

  /** A bucket's limits as this region knows them (config, a peer's row, or its rules), or undefined. */
  private async trustedBucket(
    request: BorrowRequest,
    peers: readonly StoredSlice[],
  ): Promise<{ limits: BucketLimits; source: LimitSource; configAt?: number | undefined } | undefined> {
    const config = await this.deps.store.getConfig(request.key);
    if (config) return { limits: config.limits, source: { kind: "override", version: config.version }, configAt: config.updatedAt };
    const peer = peers[0];
    if (peer) return { limits: peer.limits, source: peer.source, configAt: peer.configAt };
    const named = request.bucket?.source.kind === "rule" ? request.bucket.source.rule : undefined;
    const rule = named === undefined ? undefined : this.deps.rules?.find((r) => r.name === named);
    return rule ? { limits: rule.limits, source: { kind: "rule", rule: rule.name } } : undefined;
  }

  private async adjust(
    key: string,
    start: StoredSlice,
    change: (row: StoredSlice, now: bigint) => StoredSlice,
    writer: GeometryWriter,
  ): Promise<{ before: StoredSlice; after: StoredSlice } | undefined> {
    const out = await adjustOwnRow(this.deps, key, start, change, writer);
    if (out) this.count(out.before, out.after);
    return out;
  }

  private count(before: StoredSlice, after: StoredSlice): void {
    this.stats.rewrites++;
    this.stats.merges += changedPeers(before.takes, after.takes).length;
    this.stats.gives += changedPeers(before.gives, after.gives).length;
  }

  /** The gives this region should make as a donor, given what it has seen of its peers. */
  private plan(own: StoredSlice, peers: Map<string, StoredSlice>, now: bigint) {
    const { topology } = this.deps;
    if (this.deps.rebalance === false) return [];
    // A peer we have never seen cannot be judged: do not rebalance until all are known.
    if (topology.regions.some((r) => r !== topology.self && !peers.has(r))) return [];
    // An open forecast for a peer is an instruction to pre-position: it lifts the deny guard.
    const floors = this.forecastFloors(own.key, now);
    const forecastForPeer = topology.regions.some((r) => r !== topology.self && (floors.get(r) ?? 0) > 0);
    const deniedRecently = !forecastForPeer && deniedWithin(own, now, this.deps.denyGuardUs ?? DENY_GUARD_US);
    // With nothing to rebalance, a full slice hands the refill it would waste to peers with room.
    return planRebalance(topology.self, this.views(own, peers, now, undefined, floors), this.policyFor(own), deniedRecently, own.limits);
  }

  /** This merger's demand estimate of a region's use of a bucket at `now`, tokens/s (0: none). */
  private demandNow(key: string, region: string, now: bigint): number {
    return demandAt(this.demand.get(key)?.get(region), now, this.deps.halfLifeUs ?? 250_000);
  }

  /** The demand floor the open forecasts set for each region at `now` (built-in ones only where observed demand supports them). */
  private forecastFloors(key: string, now: bigint): Map<string, number> {
    const forecasts = [...(this.predictions.get(key)?.values() ?? [])];
    const nowMs = Number(now / 1000n);
    const leadMs = this.deps.forecastLeadMs ?? 3000;
    return new Map(
      this.deps.topology.regions.map((r) => [r, forecastFloor(forecasts, r, nowMs, leadMs, this.demandNow(key, r, now))] as const),
    );
  }

  private policyFor(own: StoredSlice): RebalancePolicy {
    return (this.deps.policy ?? defaultPolicy)(own.limits.capacity, this.deps.topology.regions.length);
  }

  /**
   * What this region knows of every region: shares and tokens (plus its own unmerged gives),
   * and demand (observed, floored by forecasts that observed demand supports).
   */
  private views(
    own: StoredSlice,
    peers: Map<string, StoredSlice>,
    now: bigint,
    borrow?: BorrowRequest,
    floors = this.forecastFloors(own.key, now),
  ): RegionView[] {
    const { topology } = this.deps;
    const shortOf = (v: RegionView): RegionView => ({ ...v, short: isShort(v, own.limits.capacity, own.limits.refillRate) });
    const tokens = (aT: bigint) => Number(aT) / Number(TOKEN);
    return topology.regions.map((region) => {
      const observed = this.demandNow(own.key, region, now);
      const floor = floors.get(region) ?? 0;
      if (region === topology.self) {
        return shortOf({
          region,
          capShare: own.capShare,
          rateShare: own.rateShare,
          demand: Math.max(floor, observed),
          level: tokens(level(own, now)),
        });
      }
      const seen = peers.get(region);
      // Count our own gives the peer has not merged yet, or we would give the same share twice.
      const given = own.gives[region] ?? NO_TRANSFER;
      const taken = seen?.takes[topology.self] ?? NO_TRANSFER;
      // A peer's estimate and level are taken at our "now" (compares clocks, for policy only).
      const estimate = seen ? observed : 0;
      return shortOf({
        region,
        capShare: (seen?.capShare ?? 0n) + (given.cap - taken.cap),
        rateShare: (seen?.rateShare ?? 0n) + (given.rate - taken.rate),
        demand: Math.max(floor, borrow?.borrower === region ? Math.max(estimate, borrow.demand) : estimate),
        level: seen ? tokens(level(seen, now) + (given.tokens - taken.tokens)) : undefined,
      });
    });
  }

  private observe(row: StoredSlice): void {
    const halfLife = this.deps.halfLifeUs ?? 250_000;
    // Bounded memory: a long-lived merge function sees every bucket; the estimates of the
    // least recently observed ones are dropped first (they rebuild from the next images).
    if (!this.demand.has(row.key) && this.demand.size >= MAX_TRACKED_KEYS) {
      const oldest = this.demand.keys().next();
      if (!oldest.done) this.demand.delete(oldest.value);
    }
    const perKey = this.demand.get(row.key) ?? new Map<string, DemandEstimate>();
    this.demand.delete(row.key); // re-insert: most recent last
    perKey.set(row.region, observeDemand(perKey.get(row.region), row.requested, row.heartbeatUs, halfLife));
    this.demand.set(row.key, perKey);
  }
}
