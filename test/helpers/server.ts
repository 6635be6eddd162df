/** A local region (real handlers, DynamoDB Local store, fresh table) on a free port. */
import { systemClock } from "../../lambda/adapters/system-clock.js";
import type { Rule } from "../../lambda/core/rules.js";
import type { BucketStore } from "../../lambda/ports/bucket-store.js";
import { type Fault, serveRoutes } from "../../local/http-adapter.js";
import { regionRoutes } from "../../local/region.js";
import { freshStore } from "./dynamo.js";

export async function startRegion(options: { rules?: Rule[]; store?: BucketStore; faults?: Fault[] } = {}) {
  const fresh = options.store ? undefined : await freshStore();
  const store = options.store ?? (fresh?.store as BucketStore);
  const server = await serveRoutes(regionRoutes({ store, clock: systemClock, rules: options.rules ?? [] }), 0, options.faults ?? []);
  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(server.url + path, {
      method,
      headers: body === undefined ? headers : { "content-type": "application/json", ...headers },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
  };
  return { server, store, fresh, call, close: server.close };
}
