/**
 * The control API of the local system (127.0.0.1:8780): partitions, lag, replication state.
 *
 *   POST /partition {"region": R}   cut R off (no replication in or out, no cross-region calls)
 *   POST /heal                      end every partition
 *   PUT  /lag {"ms": N}             replication lag
 *   GET  /replication               queue depth and lag per link, event-source counters
 *   POST /events {EventBridge event}  inject an event (e.g. detail-type "tokenbank.forecast")
 *   POST /faults {"region", "count"?, "status"?, "when"?: "before"|"after", "path"?}   fail the next requests
 *   GET  /stats                     per region: DynamoDB calls by writer (and failed conditions by
 *                                   writer), decisions, take writes and take failures by cause
 */
import type { APIGatewayProxyEventV2 } from "aws-lambda";
import { z } from "zod";
import { ValidationError } from "../lambda/core/errors.js";
import { httpHandler } from "../lambda/handlers/http.js";
import { jsonResponse } from "../lambda/middleware/http-errors.js";
import { parseJsonBody } from "../lambda/middleware/json-body.js";
import type { EventSourceEmulator } from "./event-source.js";
import type { GlobalTablesEmulator } from "./global-tables.js";
import type { Fault, Route } from "./http-adapter.js";

/** Routes of the control API. */
export function controlRoutes(deps: {
  gt: GlobalTablesEmulator;
  sources: readonly EventSourceEmulator[];
  regions: readonly string[];
  /** Delivers an EventBridge event to a region's handler (the region in detail, else the first). */
  putEvent?: (event: { "detail-type"?: string; detail?: unknown; source?: string }) => Promise<unknown>;
  /** Makes a region fail its next requests on a path. */
  injectFault?: (region: string, fault: Fault) => void;
  /** What each region's functions have done so far (`GET /stats`). */
  stats?: () => unknown;
}): Route[] {
  const region = z.object({ region: z.string() });
  const lag = z.object({ ms: z.number().int().min(0).max(600_000) });
  const checkRegion = (r: string) => {
    if (!deps.regions.includes(r))
      throw new ValidationError("request.invalid_region", `unknown region "${r}" (running: ${deps.regions.join(", ")})`);
  };
  const state = () => ({
    lagMs: deps.gt.lag,
    partitioned: deps.gt.partitioned(),
    lastError: deps.gt.lastError,
    links: deps.gt.stats(),
    eventSources: deps.sources.map((s) => ({ ...s.stats })),
  });
  return [
    {
      method: "POST",
      path: "/partition",
      handler: httpHandler(async (event: APIGatewayProxyEventV2) => {
        const body = parseJsonBody(event, region);
        checkRegion(body.region);
        deps.gt.partition(body.region);
        return jsonResponse(200, state());
      }),
    },
    {
      method: "POST",
      path: "/heal",
      handler: httpHandler(async () => {
        deps.gt.heal();
        return jsonResponse(200, state());
      }),
    },
    {
      method: "PUT",
      path: "/lag",
      handler: httpHandler(async (event: APIGatewayProxyEventV2) => {
        deps.gt.setLag(parseJsonBody(event, lag).ms);
        return jsonResponse(200, state());
      }),
    },
    { method: "GET", path: "/replication", handler: httpHandler(async () => jsonResponse(200, state())) },
    { method: "GET", path: "/stats", handler: httpHandler(async () => jsonResponse(200, deps.stats?.() ?? {})) },
    {
      method: "POST",
      path: "/faults",
      handler: httpHandler(async (event: APIGatewayProxyEventV2) => {
        const body = parseJsonBody(
          event,
          z.object({
            region: z.string(),
            path: z.string().default("/rate"),
            count: z.number().int().min(1).max(1000).default(1),
            status: z.number().int().min(500).max(599).default(503),
            when: z.enum(["before", "after"]).default("before"),
          }),
        );
        checkRegion(body.region);
        deps.injectFault?.(body.region, { path: body.path, count: body.count, status: body.status, when: body.when });
        return jsonResponse(200, { injected: body });
      }),
    },
    {
      method: "POST",
      path: "/events",
      handler: httpHandler(async (event: APIGatewayProxyEventV2) => {
        const body = parseJsonBody(event, z.object({ "detail-type": z.string(), detail: z.unknown(), source: z.string().optional() }));
        if (!deps.putEvent) throw new ValidationError("request.unsupported", "this system takes no events");
        return jsonResponse(202, { accepted: await deps.putEvent(body) });
      }),
    },
  ];
}
