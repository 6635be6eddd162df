/**
 * Share accounting across a replica's rows (pure). Every row's share is its initial share plus
 * what it has taken minus what it has given, so on a consistent cut (every region's latest row):
 *
 *   Σ shares + Σ over pairs (given − taken) = 1 000 000
 *
 * That identity lets a region re-create a lost row with exactly the share that is free, and
 * evict a dead region by absorbing its share and what was in flight to it. On stale versions a
 * lost row's own history can be invisible (it may have passed on share it took from a peer
 * whose row we see old), so callers repair only from a quiet snapshot.
 */
import { type EscrowSlice, NO_TRANSFER, type Transfer } from "./escrow.js";
import { WHOLE_SHARE } from "./units.js";

/** Regions evicted by some row, with the share their evictor absorbed. */
export type Evictions = Readonly<Record<string, { readonly by: string; readonly cap: bigint; readonly rate: bigint }>>;

/** What a new row for `self` may hold, given the peers' rows it can see. */
export interface NewRowShares {
  readonly capShare: bigint;
  readonly rateShare: bigint;
  /** Counters mirroring the peers', so nothing in flight is merged twice or lost. */
  readonly gives: Record<string, Transfer>;
  readonly takes: Record<string, Transfer>;
  /** True when no peer ever exchanged anything with `self`: a brand-new row may start full. */
  readonly fresh: boolean;
}

/**
 * The share that is free for `self` among `peers` (rows of other regions, any versions):
 * `1 000 000 − Σ peer shares − Σ in flight between peers`, with counters set so that nothing
 * is in flight between `self` and any peer.
 */
export function freeShares(self: string, peers: readonly EscrowSlice[]): NewRowShares {
  let cap = WHOLE_SHARE;
  let rate = WHOLE_SHARE;
  const gives: Record<string, Transfer> = {};
  const takes: Record<string, Transfer> = {};
  let fresh = true;
  for (const p of peers) {
    cap -= p.capShare;
    rate -= p.rateShare;
    for (const q of peers) {
      if (p === q) continue;
      const given = p.gives[q.region] ?? NO_TRANSFER;
      const taken = q.takes[p.region] ?? NO_TRANSFER;
      cap -= given.cap - taken.cap;
      rate -= given.rate - taken.rate;
    }
    const toUs = p.gives[self] ?? NO_TRANSFER;
    const fromUs = p.takes[self] ?? NO_TRANSFER;
    takes[p.region] = toUs;
    gives[p.region] = fromUs;
    if (toUs.cap !== 0n || toUs.rate !== 0n || fromUs.cap !== 0n || fromUs.rate !== 0n) fresh = false;
  }
  return { capShare: cap > 0n ? cap : 0n, rateShare: rate > 0n ? rate : 0n, gives, takes, fresh };
}

/**
 * What evicting `dead` gives its evictor: the dead row's shares plus what peers had given it
 * and it never merged (that share would otherwise be stranded). What `dead` had given others
 * stays theirs to merge.
 */
export function evictionShares(dead: EscrowSlice, others: readonly EscrowSlice[]): { cap: bigint; rate: bigint } {
  let cap = dead.capShare;
  let rate = dead.rateShare;
  for (const q of others) {
    const given = q.gives[dead.region] ?? NO_TRANSFER;
    const taken = dead.takes[q.region] ?? NO_TRANSFER;
    cap += given.cap - taken.cap;
    rate += given.rate - taken.rate;
  }
  return { cap, rate };
}

/**
 * The rows as the invariants should see them once `evictions` are taken into account: an
 * evicted region holds nothing and has merged everything sent to it (its evictor absorbed both).
 */
export function withEvictions<S extends EscrowSlice>(rows: readonly S[], evictions: Evictions): S[] {
  return rows.map((r) => {
    if (!evictions[r.region]) return r;
    const takes: Record<string, Transfer> = { ...r.takes };
    for (const q of rows) if (q.region !== r.region) takes[q.region] = q.gives[r.region] ?? NO_TRANSFER;
    return { ...r, capShare: 0n, rateShare: 0n, mark: 0n, takes };
  });
}
