/**
 * The whole multi-region system on one machine: one DynamoDB Local (regions are separate
 * namespaces by client region), a table per region, the Global Tables emulator, an event-source
 * emulator per region feeding its merge handler, a heartbeat scheduler, one HTTP port per
 * region and the control API. Everything binds to 127.0.0.1.
 */
import { DynamoBucketStore, makeDynamoClient } from "../lambda/adapters/dynamodb/store.js";
import { systemClock } from "../lambda/adapters/system-clock.js";
import { handleForecastEvent, runForecaster } from "../lambda/app/forecasting.js";
import type { Limiter } from "../lambda/app/limiter.js";
import { Merger } from "../lambda/app/merger.js";
import { reconcile } from "../lambda/app/reconciler.js";
import type { Topology } from "../lambda/app/topology.js";
import { ValidationError } from "../lambda/core/errors.js";
import type { Rule } from "../lambda/core/rules.js";
import { httpHandler } from "../lambda/handlers/http.js";
import { makeStreamMergeHandler } from "../lambda/handlers/stream-merge.js";
import { makeTransferHandler } from "../lambda/handlers/transfer.js";
import { jsonResponse } from "../lambda/middleware/http-errors.js";
import { consoleRoutes } from "./console.js";
import { controlRoutes } from "./control.js";
import { type DynamoLocal, startDynamoLocal } from "./dynamodb-local.js";
import { EventSourceEmulator, type StreamHandler } from "./event-source.js";
import { GlobalTablesEmulator } from "./global-tables.js";
import { type Fault, type LocalServer, serveRoutes } from "./http-adapter.js";
import { LocalPeerTransfer } from "./peer-transfer.js";
import { regionApp } from "./region.js";
import { clearState, writeState } from "./state.js";
import { StreamTailer } from "./stream-tailer.js";
import { ensureTable } from "./table.js";

/** Options of {@link startLocalSystem}. */
export interface LocalSystemOptions {
  readonly regions: readonly string[];
  readonly rules: readonly Rule[];
  /** First region's port; the others count up. 0: any free ports. @default 8787 */
  readonly basePort?: number;
  /** Control API port (0: any). @default 8780 */
  readonly controlPort?: number;
  /** Replication lag, ms. @default 800 */
  readonly lagMs?: number;
  readonly tableName?: string;
  readonly dataDir?: string;
  readonly dynamoPort?: number;
  /** Reuse a running DynamoDB Local (tests) instead of starting one. */
  readonly dynamoEndpoint?: string;
  /** Borrow from peers when a slice runs dry. @default true */
  readonly borrow?: boolean;
  /** A forecast floors its region's demand from this long before its start, ms. @default 3000 */
  readonly forecastLeadMs?: number;
  /** Run the reconciler and the forecaster in every region this often, ms (0: never). @default 10000 */
  readonly reconcileEveryMs?: number;
  /** Write the state file the CLI reads. @default false */
  readonly writeStateFile?: boolean;
  /** Heartbeat period, ms. @default 1000 */
  readonly heartbeatMs?: number;
  /** A peer silent for longer is unreachable. @default max(3 × lag, 3000) */
  readonly degradedAfterMs?: number;
  readonly weights?: Readonly<Record<string, number>>;
  /** Every DynamoDB call's timeout, ms (as `TOKENBANK_DYNAMODB_TIMEOUT_MS` in AWS). @default 1000 */
  readonly dynamoTimeoutMs?: number;
  /** A lease's life, ms (as `TOKENBANK_LEASE_MS` in AWS; 0: no leases). @default 100 */
  readonly leaseMs?: number;
  /**
   * The DynamoDB Local namespace (access key id) of the system's tables. DynamoDB Local keeps the
   * stream records of every table in a namespace together, and a write to a table costs in
   * proportion to the records written before its stream began (docs/benchmarks.md): systems
   * that share one engine should each have their own. @default "local"
   */
  readonly dynamoNamespace?: string;
}

/** One running region. */
export interface LocalRegion {
  readonly region: string;
  readonly url: string;
  readonly store: DynamoBucketStore;
  /** The merge handler's store (another function, with its own call counts). */
  readonly mergeStore: DynamoBucketStore;
  readonly merger: Merger;
  readonly limiter: Limiter;
}

/** A running local system. */
export interface LocalSystem {
  readonly regions: readonly LocalRegion[];
  readonly controlUrl: string;
  readonly dynamoEndpoint: string;
  readonly gt: GlobalTablesEmulator;
  readonly sources: readonly EventSourceEmulator[];
  stop(): Promise<void>;
}

/** Starts the local system. On failure, stops what it had started and rethrows. */
export async function startLocalSystem(options: LocalSystemOptions): Promise<LocalSystem> {
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  };
  try {
    const tableName = options.tableName ?? "tokenbank";
    const lagMs = options.lagMs ?? 800;
    let endpoint = options.dynamoEndpoint;
    if (!endpoint) {
      const ddb: DynamoLocal = await startDynamoLocal({
        ...(options.dataDir ? { dataDir: options.dataDir } : {}),
        ...(options.dynamoPort ? { port: options.dynamoPort } : {}),
      });
      stops.push(ddb.stop);
      endpoint = ddb.endpoint;
    }
    // The functions' clients time out as in AWS; the infrastructure's own (table creation, the
    // Global Tables emulator standing in for AWS replication) may take as long as the engine needs.
    const clients = new Map(
      options.regions.map((r) => [
        r,
        makeDynamoClient({ region: r, endpoint, requestTimeoutMs: options.dynamoTimeoutMs, localNamespace: options.dynamoNamespace }),
      ]),
    );
    const infra = new Map(
      options.regions.map((r) => [
        r,
        makeDynamoClient({ region: r, endpoint, requestTimeoutMs: 30_000, localNamespace: options.dynamoNamespace }),
      ]),
    );
    stops.push(async () => {
      for (const client of [...clients.values(), ...infra.values()]) client.destroy();
    });
    for (const [, client] of infra) await ensureTable(client, tableName);

    const tailers = options.regions.map(
      (region) =>
        new StreamTailer({
          endpoint: endpoint as string,
          region,
          tableName,
          ...(options.dynamoNamespace ? { namespace: options.dynamoNamespace } : {}),
        }),
    );
    const gt = new GlobalTablesEmulator({ tableName, clients: infra, tailers, lagMs });
    const regions: LocalRegion[] = [];
    const sources: EventSourceEmulator[] = [];
    const servers: LocalServer[] = [];
    const basePort = options.basePort ?? 8787;
    const urls = new Map<string, string>();
    const faultsOf = new Map<string, Fault[]>();
    const degradedAfterMs = options.degradedAfterMs ?? Math.max(3 * lagMs, 3000);
    for (const [i, region] of options.regions.entries()) {
      const topology: Topology = { self: region, regions: options.regions, weights: options.weights };
      const callBudgetMs = options.dynamoTimeoutMs;
      const store = new DynamoBucketStore({ client: clients.get(region) as never, tableName, region, callBudgetMs });
      // The merge handler is another function with its own store (and request counts).
      const mergeStore = new DynamoBucketStore({ client: clients.get(region) as never, tableName, region, callBudgetMs });
      const transfer =
        options.borrow === false
          ? undefined
          : new LocalPeerTransfer(
              region,
              (r) => urls.get(r),
              (r) => gt.isCut(r),
            );
      // One merger serves the stream (offering its donor gives) and the internal route (lending, collecting offers).
      const merger = new Merger({
        store: mergeStore,
        clock: systemClock,
        topology,
        forecastLeadMs: options.forecastLeadMs,
        rules: options.rules,
        ...(transfer ? { transfer } : {}),
      });
      const handler = makeStreamMergeHandler({ merger, region }) as unknown as StreamHandler;
      sources.push(new EventSourceEmulator({ region, tailer: tailers[i] as StreamTailer, handler }));
      const borrow = transfer ? { transfer } : undefined;
      const app = regionApp({
        store,
        clock: systemClock,
        rules: options.rules,
        topology,
        degradedAfterMs,
        borrow,
        leaseMs: options.leaseMs,
      });
      // The internal route other regions borrow through (the transfer function in AWS).
      const lend = makeTransferHandler({ merger });
      const internal = {
        method: "POST",
        path: "/internal/borrow",
        handler: httpHandler(async (event) => {
          let request: unknown;
          try {
            request = JSON.parse(event.body ?? "");
          } catch {
            throw new ValidationError("request.invalid_json", "the borrow request is not JSON");
          }
          return jsonResponse(200, await lend(request, {} as never));
        }),
      };
      const faults: Fault[] = [];
      faultsOf.set(region, faults);
      const server = await serveRoutes([...app.routes, internal], basePort === 0 ? 0 : basePort + i, faults);
      urls.set(region, server.url);
      servers.push(server);
      stops.push(server.close);
      regions.push({ region, url: server.url, store, mergeStore, merger, limiter: app.limiter });
    }
    // One region has nothing to replicate and no peer rows to merge (in AWS its stream mapping's
    // filter passes nothing): no tailing, which would only keep the engine busy.
    if (options.regions.length > 1) {
      for (const t of tailers) {
        await t.start();
        stops.push(() => t.stop());
      }
      gt.start();
      stops.push(() => gt.stop());
      for (const s of sources) {
        s.start();
        stops.push(() => s.stop());
      }
    }
    // The scheduler: heartbeats (the AWS deployment runs the same job on an EventBridge schedule).
    const beat = async () => {
      const now = systemClock.nowUs();
      await Promise.all(regions.map((r) => r.store.putHeartbeat(now).catch(() => undefined)));
    };
    await beat();
    const timer = setInterval(() => void beat(), options.heartbeatMs ?? 1000);
    stops.push(async () => clearInterval(timer));

    // The scheduler also runs the reconciler (EventBridge runs the same code in AWS).
    const every = options.reconcileEveryMs ?? 10_000;
    const memories = new Map(regions.map((r) => [r.region, new Map()] as const));
    const topologyOf = (region: string): Topology => ({ self: region, regions: options.regions, weights: options.weights });
    if (every > 0) {
      let running = false;
      const job = setInterval(() => {
        if (running) return;
        running = true;
        void Promise.all(
          regions.map(async (r) => {
            const deps = { store: r.store, clock: systemClock, topology: topologyOf(r.region), merger: r.merger, rules: options.rules };
            await reconcile(deps, { quietMs: 3000 }).catch(() => undefined);
            await runForecaster(deps, memories.get(r.region) as never, { periodMs: every }).catch(() => undefined);
          }),
        ).finally(() => {
          running = false;
        });
      }, every);
      stops.push(async () => clearInterval(job));
    }
    const putEvent = async (event: { "detail-type"?: string; detail?: unknown }) => {
      const wanted = (event.detail as { region?: string } | undefined)?.region;
      const target = regions.find((r) => r.region === wanted) ?? (regions[0] as LocalRegion);
      return handleForecastEvent(
        { store: target.store, clock: systemClock, topology: topologyOf(target.region), merger: target.merger },
        event,
        { periodMs: every },
      );
    };

    const injectFault = (region: string, fault: Fault) => faultsOf.get(region)?.push(fault);
    const stats = () => ({
      regions: Object.fromEntries(
        regions.map((r) => [
          r.region,
          { rate: { calls: r.store.stats(), limiter: r.limiter.stats }, merge: { calls: r.mergeStore.stats(), merger: r.merger.stats } },
        ]),
      ),
      replication: gt.stats(),
    });
    const control = await serveRoutes(
      [
        ...controlRoutes({ gt, sources, regions: options.regions, putEvent, injectFault, stats }),
        ...consoleRoutes({ regions, gt, clock: systemClock }),
      ],
      options.controlPort ?? 8780,
    );
    stops.push(control.close);
    if (options.writeStateFile) {
      writeState({
        pid: process.pid,
        dynamoEndpoint: endpoint,
        tableName,
        regions: regions.map((r) => ({ region: r.region, url: r.url })),
        controlUrl: control.url,
      });
      stops.push(async () => clearState());
    }
    return { regions, controlUrl: control.url, dynamoEndpoint: endpoint, gt, sources, stop: stopAll };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
