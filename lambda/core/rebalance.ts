/**
 * Rebalancing (ARCHITECTURE.md §3): a region whose share exceeds its demand-proportional
 * target gives the excess to regions below target, in proportion to their deficit. Donor-driven
 * only; a small floor keeps every region able to serve a trickle. Capacity and rate shares are
 * planned separately (different floors, §7). Pure: the caller supplies views and demand.
 */
import { maxBig, minBig, WHOLE_SHARE } from "./units.js";

/** What a donor knows of one region (itself included). */
export interface RegionView {
  readonly region: string;
  /** Capacity share, ppm: as last seen, plus the donor's own gives the region has not merged yet. */
  readonly capShare: bigint;
  /** Rate share, ppm, counted the same way. */
  readonly rateShare: bigint;
  /** Demand, tokens/s (≥ 0). */
  readonly demand: number;
  /**
   * Whether the region is short: its demand exceeds what its shares supply (its refill, or less
   * than one token of capacity). Donors give only to short regions, so noise in small demand
   * estimates does not keep share in flight between regions. @default true
   */
  readonly short?: boolean | undefined;
  /**
   * Tokens in the region's slice, as last seen (a peer's decayed to the viewer's clock: a lower
   * bound, for policy only). `undefined`: unknown, and no rule that needs it applies.
   */
  readonly level?: number | undefined;
}

/** Policy knobs. */
export interface RebalancePolicy {
  /** Capacity share every region keeps, ppm. */
  readonly capFloor: bigint;
  /** Rate share every region keeps, ppm (much smaller: idle regions should not waste refill). */
  readonly rateFloor: bigint;
  /** A busy donor gives only when its excess exceeds this, ppm (an idle donor gives it all). */
  readonly hysteresis: bigint;
  /**
   * A lender that is short and denying itself, asked by a borrower with about its own demand
   * (within a factor of two), lends only when it holds more than this beyond its
   * demand-proportional part, ppm: below it the split is demand-estimate noise, and moving share
   * between two short regions gains nothing globally (it only re-bases both rows under their takes).
   */
  readonly lendHysteresis: bigint;
}

/** One planned give. */
export interface PlannedGive {
  readonly peer: string;
  readonly cap: bigint;
  readonly rate: bigint;
}

/** The tokens (or tokens/s) a share of `whole` is: `ppm / 10⁶ · whole` (for policy, not admission). */
const partOf = (ppm: bigint, whole: number): number => (Number(ppm) / 1e6) * whole;

/** How long, s, the tokens a region holds must cover its demand beyond its refill for it not to count as short. */
export const SHORT_HORIZON_S = 5;

/**
 * Whether a region is short of share: it has demand and its capacity share holds less than one
 * token, or its demand (tokens/s) exceeds its refill share of the bucket's rate and (when its
 * level is known) the tokens it holds would not cover the difference for {@link SHORT_HORIZON_S}.
 * An idle region is never short: it gets a floor back when it has demand again. (A full slice
 * serving a trickle above its refill is not short: giving it share would only keep share in
 * flight.)
 */
export function isShort(v: Pick<RegionView, "capShare" | "rateShare" | "demand" | "level">, capacity: number, refillRate: number): boolean {
  if (v.demand > 0 && partOf(v.capShare, capacity) < 1) return true;
  const gap = v.demand - partOf(v.rateShare, refillRate);
  return gap > 0 && (v.level === undefined || v.level <= gap * SHORT_HORIZON_S);
}

/** Default floors for a bucket of `capacity` tokens over `regions` regions: ≥ 1 token of capacity (or 1%), 0.1% of rate. */
export function defaultPolicy(capacity: number, regions: number): RebalancePolicy {
  const oneToken = BigInt(Math.ceil(1_000_000 / capacity));
  const even = WHOLE_SHARE / BigInt(Math.max(1, regions));
  const capFloor = [oneToken > 10_000n ? oneToken : 10_000n, even].reduce((a, b) => (a < b ? a : b));
  return { capFloor, rateFloor: 1_000n < even ? 1_000n : even, hysteresis: 20_000n, lendHysteresis: 100_000n };
}

/** Demand-proportional targets with a floor, summing to exactly one whole share. */
export function targets(views: readonly RegionView[], floor: bigint): Map<string, bigint> {
  const n = BigInt(views.length);
  const spread = WHOLE_SHARE - floor * n;
  const weights = views.map((v) => BigInt(Math.max(0, Math.round(v.demand * 1000))));
  const total = weights.reduce((a, b) => a + b, 0n);
  const out = new Map<string, bigint>();
  views.forEach((v, i) => {
    out.set(v.region, floor + (total === 0n ? spread / n : (spread * (weights[i] as bigint)) / total));
  });
  return out;
}

function plan(
  self: string,
  views: readonly RegionView[],
  share: (v: RegionView) => bigint,
  floor: bigint,
  hysteresis: bigint,
): Map<string, bigint> {
  const out = new Map<string, bigint>();
  const t = targets(views, floor);
  const me = views.find((v) => v.region === self);
  if (!me) return out;
  const excess = share(me) - (t.get(self) as bigint);
  const idle = me.demand === 0;
  if (excess <= 0n || (!idle && excess <= hysteresis)) return out;
  const deficits = views
    .filter((v) => v.region !== self && v.short !== false)
    .map((v) => ({ region: v.region, d: (t.get(v.region) as bigint) - share(v) }));
  const need = deficits.filter((x) => x.d > 0n);
  const total = need.reduce((a, x) => a + x.d, 0n);
  if (total === 0n) return out;
  const budget = excess < total ? excess : total;
  for (const x of need) {
    const amount = (budget * x.d) / total;
    if (amount > 0n) out.set(x.region, amount);
  }
  return out;
}

/**
 * The gives a donor should make now. Nothing when it denied a request recently (it needs its
 * share). With the bucket's `limits`, a donor with no region below its target whose slice is
 * about to fill hands its refill to peers with room ({@link planRoomRate}); without them, nothing.
 */
export function planRebalance(
  self: string,
  views: readonly RegionView[],
  policy: RebalancePolicy,
  deniedRecently: boolean,
  limits?: { readonly capacity: number; readonly refillRate: number },
): PlannedGive[] {
  if (deniedRecently || views.length < 2) return [];
  const cap = plan(self, views, (v) => v.capShare, policy.capFloor, policy.hysteresis);
  const rate = plan(self, views, (v) => v.rateShare, policy.rateFloor, policy.hysteresis);
  const peers = new Set([...cap.keys(), ...rate.keys()]);
  if (peers.size === 0 && limits) return planRoomRate(self, views, policy, limits.capacity, limits.refillRate);
  return [...peers].map((peer) => ({ peer, cap: cap.get(peer) ?? 0n, rate: rate.get(peer) ?? 0n }));
}

/** A slice about to fill keeps at least this many times its demand's part of the refill rate. */
export const ROOM_KEEP_FACTOR = 2;

/** How far ahead, s, a slice looks for the moment it fills: within it, it hands its refill on. */
export const ROOM_HORIZON_S = 10;

/**
 * The refill a slice that is about to fill should hand to peers with room (ARCHITECTURE.md §8,
 * "a full slice wastes its refill"). A central bucket refills at the whole rate until it is
 * full; a slice that is full loses its share of that refill, so the bucket as a whole refills
 * slower than it should whenever one region fills while another still has room. The fix is to
 * make the slices fill at about the same moment: each region's target rate is its part of the
 * room, `room / Σ room`. (Demand is left out of the targets on purpose: each region estimates
 * the others' demand from what it has observed, the estimates disagree, and targets built on
 * them made two regions give the same rate back and forth without end.)
 *
 * A slice whose net refill (its rate minus its demand) fills its room within
 * {@link ROOM_HORIZON_S} keeps `max(rateFloor, its target, ROOM_KEEP_FACTOR · demand /
 * refillRate)` and gives the rest (rate only: its tokens stay) to peers below their target with
 * at least `max(1 token, hysteresis · capacity)` of room, in proportion to how far below, never
 * beyond it, rounded down. Nothing when the surplus is within the hysteresis, the slice does not
 * fill, demand takes the whole refill (`Σ demand ≥ refillRate`: nothing overflows), the bucket
 * has no refill or the slice's level is unknown (a peer whose level is unknown counts as having
 * no room). Moving rate share never admits a token more: it only moves where refill lands.
 */
export function planRoomRate(
  self: string,
  views: readonly RegionView[],
  policy: RebalancePolicy,
  capacity: number,
  refillRate: number,
): PlannedGive[] {
  const me = views.find((v) => v.region === self);
  if (!me || me.level === undefined || !(refillRate > 0) || views.length < 2) return [];
  const room = (v: RegionView) => (v.level === undefined ? 0 : Math.max(0, partOf(v.capShare, capacity) - v.level));
  const net = partOf(me.rateShare, refillRate) - me.demand;
  if (!(net > 0) || room(me) > net * ROOM_HORIZON_S) return [];
  const spare = refillRate - views.reduce((a, v) => a + v.demand, 0);
  const totalRoom = views.reduce((a, v) => a + room(v), 0);
  if (!(spare > 0) || !(totalRoom > 0)) return [];
  // Targets from room alone: every region computes the same ones from the same rows.
  const target = (v: RegionView) => BigInt(Math.floor((room(v) / totalRoom) * 1e6));
  const keepByDemand = BigInt(Math.min(1e6, Math.ceil(((ROOM_KEEP_FACTOR * me.demand) / refillRate) * 1e6)));
  const surplus = me.rateShare - maxBig(maxBig(policy.rateFloor, target(me)), keepByDemand);
  if (surplus <= policy.hysteresis) return [];
  const minRoom = Math.max(1, partOf(policy.hysteresis, capacity));
  const below = views
    .filter((v) => v.region !== self && room(v) >= minRoom)
    .map((v) => ({ peer: v.region, d: target(v) - v.rateShare }))
    .filter((x) => x.d > 0n);
  const total = below.reduce((a, x) => a + x.d, 0n);
  if (total === 0n) return [];
  const budget = minBig(surplus, total);
  return below.map((x) => ({ peer: x.peer, cap: 0n, rate: (budget * x.d) / total })).filter((g) => g.rate > 0n);
}

/** What a borrower that ran dry asks for, beyond its demand. */
export interface LendNeed {
  /** Capacity share, ppm, the lender should hand over (sized from its own level and the borrower's shortfall). */
  readonly capShare: bigint;
  /** Whether the lender denied a request within its deny guard (it is using its share). @default false */
  readonly lenderDenying?: boolean | undefined;
  /** The lender's `RebalancePolicy.lendHysteresis`, ppm. @default 0 */
  readonly hysteresis?: bigint | undefined;
}

/**
 * The give a lender makes to a borrower that ran dry (ARCHITECTURE.md §8, "capacity floors
 * cost bursts"). Unlike donor rebalancing, a lender keeps only its demand-proportional part,
 * with **no floor**: an idle lender lends down to zero (a floor serves a trickle without a
 * round trip; it is not a reservation kept from a burst, and a region gets one back by
 * borrowing or rebalancing when it needs one). The give is sized to the borrower's stated need
 * (donor rebalancing, not lending, moves share toward demand), never more than the lender can
 * spare; rate share travels with the capacity in proportion. A lender that is short, denying
 * and asked by a borrower with about its own demand (both short, the split only noise) gives
 * nothing unless its spare exceeds `need.hysteresis`. `undefined`: nothing to give.
 */
export function planLend(self: string, borrower: string, views: readonly RegionView[], need: LendNeed): PlannedGive | undefined {
  const me = views.find((v) => v.region === self);
  const them = views.find((v) => v.region === borrower);
  if (!me || !them || self === borrower) return undefined;
  // What the lender holds beyond its demand-proportional part (no floor), of each share.
  const part = targets(views, 0n).get(self) as bigint;
  const spareCap = me.capShare - part;
  const spareRate = me.rateShare - part;
  const alike = me.demand <= 2 * them.demand && them.demand <= 2 * me.demand;
  if (need.lenderDenying === true && me.short !== false && alike) {
    const h = need.hysteresis ?? 0n;
    if (spareCap <= h && spareRate <= h) return undefined;
  }
  const clamp = (want: bigint, spare: bigint) => maxBig(0n, minBig(want, spare));
  const cap = clamp(need.capShare, spareCap);
  // Rate travels with the capacity it refills (tokens without refill run dry again), within what is spare.
  const rate = clamp(me.capShare === 0n ? 0n : (me.rateShare * cap) / me.capShare, spareRate);
  return cap === 0n && rate === 0n ? undefined : { peer: borrower, cap, rate };
}
