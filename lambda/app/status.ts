/** The `/status/{key}` use case: the bucket as the answering region sees it, world-wide. */
import { NotFoundError } from "../core/errors.js";
import { inFlight } from "../core/escrow.js";
import type { ScaledLimits } from "../core/forecast.js";
import { assertValidKey } from "../core/keys.js";
import { level, resetAfter, sliceCapacity } from "../core/slice.js";
import { fromMillionths, TOKEN } from "../core/units.js";
import type { BucketStore, StoredSlice } from "../ports/bucket-store.js";
import type { Clock } from "../ports/clock.js";
import { configuredLimits, heldByForecast } from "./forecasting.js";
import { makeSlice } from "./new-row.js";
import { singleRegion, type Topology } from "./topology.js";

/** One region's part of a bucket, as last heard. */
export interface RegionStatus {
  readonly region: string;
  /** Whole tokens in the region's slice (rounded down), projected to now. */
  readonly tokens: number;
  /** Capacity share, as a fraction 0–1. */
  readonly share: number;
  readonly rateShare: number;
  /** The slice's capacity, whole tokens (rounded down). */
  readonly capacity: number;
  /** Age of the last state heard from the region, ms (0 for the answering region). */
  readonly ageMs: number;
}

/** A bucket's status. */
export interface BucketStatus {
  readonly key: string;
  readonly capacity: number;
  readonly refillRate: number;
  /** Global token estimate: every slice plus tokens in flight, rounded down. */
  readonly tokens: number;
  /** Until this region's slice is full again. */
  readonly resetAfterMs: number | null;
  readonly source: "override" | "rule";
  /** The answering region. */
  readonly region: string;
  readonly regions: readonly RegionStatus[];
  /** Age of the stalest peer state this view rests on, ms. */
  readonly syncLagMs: number;
  /** True when a peer has been silent longer than the threshold: this region runs on its own slice. */
  readonly degraded: boolean;
  readonly unreachable: readonly string[];
  /**
   * Set while a forecast holds the bucket's limits away from what the operator configured
   * (`forecastGrowth` or `predictive`): who changed them, and the configured limits a restore returns to.
   */
  readonly scaling?: { readonly by: string; readonly since: string; readonly configured: ScaledLimits } | undefined;
}

/** Dependencies of {@link bucketStatus}. */
export interface StatusDeps {
  readonly store: BucketStore;
  readonly clock: Clock;
  readonly topology?: Topology;
  /** A peer silent for longer than this is unreachable. @default 5000 */
  readonly degradedAfterMs?: number;
}

const ms = (us: bigint) => Number(us / 1000n);

/** Reads the status of `key` without changing anything. @throws {NotFoundError} */
export async function bucketStatus(deps: StatusDeps, key: string): Promise<BucketStatus> {
  assertValidKey(key);
  const { store, clock } = deps;
  const topology = deps.topology ?? singleRegion(store.region);
  const now = clock.nowUs();
  const [rows, beats] = await Promise.all([
    store.querySlices(key),
    topology.regions.length > 1 ? store.heartbeats() : new Map<string, bigint>(),
  ]);
  let own = rows.find((r) => r.region === topology.self);
  if (!own) {
    const config = await store.getConfig(key);
    const any = rows[0];
    if (!config && !any) throw new NotFoundError("bucket.not_found", `no bucket "${key}"`);
    own = config
      ? makeSlice(key, topology, config.limits, { kind: "override", version: config.version }, now, config.updatedAt)
      : makeSlice(key, topology, (any as StoredSlice).limits, (any as StoredSlice).source, now);
  }
  const all = [own, ...rows.filter((r) => r.region !== topology.self && topology.regions.includes(r.region))];
  // Ages compare our clock with peers' (display and degraded detection only, never admission).
  const lastHeard = (region: string, row?: StoredSlice) => {
    const beat = beats.get(region) ?? 0n;
    const hb = row?.heartbeatUs ?? 0n;
    return beat > hb ? beat : hb;
  };
  const regions: RegionStatus[] = all.map((row) => ({
    region: row.region,
    tokens: Number(level(row, now) / TOKEN),
    share: fromMillionths(row.capShare),
    rateShare: fromMillionths(row.rateShare),
    capacity: Number(sliceCapacity(row) / TOKEN),
    ageMs: row.region === topology.self ? 0 : Math.max(0, ms(now - lastHeard(row.region, row))),
  }));
  const threshold = deps.degradedAfterMs ?? 5000;
  const peers = topology.regions.filter((r) => r !== topology.self);
  const ages = peers.map((region) => {
    const row = all.find((r) => r.region === region);
    const heard = lastHeard(region, row);
    return { region, age: heard === 0n ? Number.POSITIVE_INFINITY : Math.max(0, ms(now - heard)) };
  });
  const unreachable = ages.filter((a) => a.age > threshold).map((a) => a.region);
  const flight = inFlight(all);
  const total = all.reduce((a, r) => a + level(r, now), 0n) + (flight.tokens > 0n ? flight.tokens : 0n);
  const cap = own.capacity * TOKEN;
  const reset = resetAfter(own, now);
  const scaling = await scalingOf(store, key);
  const finite = ages.map((a) => a.age).filter(Number.isFinite);
  return {
    key,
    capacity: own.limits.capacity,
    refillRate: own.limits.refillRate,
    tokens: Number((total < cap ? total : cap) / TOKEN),
    resetAfterMs: reset === null ? null : Number((reset + 999n) / 1000n),
    source: own.source.kind,
    region: topology.self,
    regions,
    syncLagMs: finite.length > 0 ? Math.max(...finite) : 0,
    degraded: unreachable.length > 0,
    unreachable,
    ...(scaling ? { scaling } : {}),
  };
}

/** The forecast scaling holding `key`'s limits, if any (read from its config and history). */
async function scalingOf(store: BucketStore, key: string): Promise<BucketStatus["scaling"]> {
  const config = await store.getConfig(key);
  if (!config || !heldByForecast(config)) return undefined;
  const configured = configuredLimits(config, await store.history(key));
  return { by: config.updatedBy, since: new Date(config.updatedAt).toISOString(), configured };
}
