/** Which region this is, and which regions share every bucket. */
import { initialShares } from "../core/escrow.js";

/** The deployment's regions as seen from one of them. */
export interface Topology {
  /** This region. */
  readonly self: string;
  /** Every serving region (this one included), in configuration order. */
  readonly regions: readonly string[];
  /** Initial-split weights per region. @default equal */
  readonly weights?: Readonly<Record<string, number>> | undefined;
}

/** A one-region topology. */
export function singleRegion(region: string): Topology {
  return { self: region, regions: [region] };
}

/** This region's initial share of every new bucket, ppm. */
export function initialShare(t: Topology): bigint {
  return initialShares(t.regions, t.weights).get(t.self) ?? 0n;
}

/** Parses `us-east-1,eu-central-1` and optional weights `us-east-1=2,eu-central-1=1`. */
export function parseTopology(self: string, regions: string, weights?: string): Topology {
  const list = regions
    .split(",")
    .map((r) => r.trim())
    .filter((r) => r !== "");
  if (!list.includes(self)) throw new Error(`the region list "${regions}" does not include this region "${self}"`);
  let w: Record<string, number> | undefined;
  if (weights) {
    w = {};
    for (const part of weights.split(",")) {
      const [region, value] = part.split("=").map((x) => x.trim());
      const n = Number(value);
      if (!region || !list.includes(region) || !Number.isFinite(n) || n < 0)
        throw new Error(`bad region weight "${part}" (use region=number)`);
      w[region] = n;
    }
  }
  return { self, regions: list, weights: w };
}
