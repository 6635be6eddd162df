/**
 * How a region creates its own row of a bucket, from the peers' rows it can see:
 * - no peer rows: the initial split, full (a brand-new bucket);
 * - peers that never exchanged anything with this region: min(initial share, free share), full;
 * - otherwise this region's row existed before and was lost (expired, deleted by hand): share 0,
 *   empty, with watermarks mirroring the peers so nothing is merged twice. Borrow and rebalance
 *   give it share again, and the reconciler restores any stranded share from a quiet snapshot.
 * Never more share than is free: I1 holds whatever the replica's lag.
 */
import { freeShares } from "../core/accounting.js";
import { type BucketLimits, toSliceParams } from "../core/limits.js";
import { newSlice, sliceCapacity } from "../core/slice.js";
import type { LimitSource, StoredSlice } from "../ports/bucket-store.js";
import { initialShare, type Topology } from "./topology.js";

/** How long a rewrite may hold a slice frozen, µs. */
export const FREEZE_US = 2_000_000n;

/** A new, full slice holding this region's initial share of the bucket. */
export function makeSlice(
  key: string,
  topology: Topology,
  limits: BucketLimits,
  source: LimitSource,
  nowUs: bigint,
  configAt?: number,
): StoredSlice {
  const share = initialShare(topology);
  return {
    ...newSlice(toSliceParams(limits, share, share), nowUs),
    key,
    region: topology.self,
    limits,
    source,
    configAt,
    consumed: 0n,
    requested: 0n,
    denied: 0n,
    heartbeatUs: nowUs,
    gives: {},
    takes: {},
  };
}

/** This region's new row of `key`. */
export function newOwnRow(
  key: string,
  topology: Topology,
  limits: BucketLimits,
  source: LimitSource,
  nowUs: bigint,
  peers: readonly StoredSlice[],
  configAt?: number,
): StoredSlice {
  const base = makeSlice(key, topology, limits, source, nowUs, configAt);
  const others = peers.filter((p) => p.region !== topology.self && topology.regions.includes(p.region));
  if (others.length === 0) return base;
  const free = freeShares(topology.self, others);
  const initial = initialShare(topology);
  if (free.fresh) {
    const capShare = free.capShare < initial ? free.capShare : initial;
    const rateShare = free.rateShare < initial ? free.rateShare : initial;
    return { ...base, capShare, rateShare, mark: 0n, gives: free.gives, takes: free.takes };
  }
  const empty = { ...base, capShare: 0n, rateShare: 0n, gives: free.gives, takes: free.takes };
  return { ...empty, mark: sliceCapacity(empty) };
}
