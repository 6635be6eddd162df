/** One region of the local system: the same handlers as in AWS, over a region's store. */
import { BucketAdmin } from "../lambda/app/buckets.js";
import { type BorrowOptions, Limiter } from "../lambda/app/limiter.js";
import { singleRegion, type Topology } from "../lambda/app/topology.js";
import type { Rule } from "../lambda/core/rules.js";
import { makeBucketsHandler } from "../lambda/handlers/buckets.js";
import { makeHealthHandler } from "../lambda/handlers/health.js";
import { makeOpenApiHandler } from "../lambda/handlers/openapi.js";
import { makeRateHandler } from "../lambda/handlers/rate.js";
import { makeStatusHandler } from "../lambda/handlers/status.js";
import type { BucketStore } from "../lambda/ports/bucket-store.js";
import type { Clock } from "../lambda/ports/clock.js";
import type { Route } from "./http-adapter.js";

/** Dependencies of one region's routes. */
export interface RegionDeps {
  readonly store: BucketStore;
  readonly clock: Clock;
  readonly rules: readonly Rule[];
  readonly topology?: Topology;
  readonly degradedAfterMs?: number;
  readonly borrow?: BorrowOptions | undefined;
  /** A lease's life, ms (0: no leases; see `LimiterDeps.leaseMs`). @default 100 */
  readonly leaseMs?: number | undefined;
}

/** The API routes of one region, as the CDK stack wires them in API Gateway. */
export function regionRoutes(deps: RegionDeps): Route[] {
  return regionApp(deps).routes;
}

/** The routes and the limiter behind them (for counters). */
export function regionApp(deps: RegionDeps): { routes: Route[]; limiter: Limiter } {
  const { store, clock, rules } = deps;
  const topology = deps.topology ?? singleRegion(store.region);
  const limiter = new Limiter({
    store,
    clock,
    rules,
    topology,
    ...(deps.borrow ? { borrow: deps.borrow } : {}),
    ...(deps.leaseMs === undefined ? {} : { leaseMs: deps.leaseMs }),
  });
  const buckets = makeBucketsHandler({ admin: new BucketAdmin({ store, clock, topology }) });
  const routes: Route[] = [
    { method: "POST", path: "/rate", handler: makeRateHandler({ limiter, region: store.region }) },
    {
      method: "GET",
      path: "/status/{key}",
      handler: makeStatusHandler({ store, clock, topology, degradedAfterMs: deps.degradedAfterMs }),
    },
    { method: "GET", path: "/health", handler: makeHealthHandler({ region: store.region }) },
    { method: "GET", path: "/openapi.json", handler: makeOpenApiHandler() },
    ...["GET", "PUT", "PATCH", "DELETE"].map((method) => ({ method, path: "/buckets/{key}", handler: buckets })),
    { method: "GET", path: "/buckets/{key}/history", handler: buckets },
  ];
  return { routes, limiter };
}
