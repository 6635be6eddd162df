/**
 * Hot path on allowed traffic, one busy key, every system in its own process on the same
 * DynamoDB Local, load from autocannon's own process: tokenbank (`npm start`'s entry point, one
 * region, with its leases, and with `--lease-ms 0`: every decision a write), the single-write floor on a table with a stream, rate-limiter-flexible's DynamoDB
 * store and a textbook read-then-write bucket. Warmed first (the engine's JIT keeps speeding up
 * for a while), then measured round-robin at each concurrency so that no system gets a colder
 * engine. Ratios within one run are the result; absolute numbers depend on this machine's load.
 */
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DynamoLocal } from "../../local/dynamodb-local.js";
import { freePorts, runAutocannon, type ServerProcess, startLocalSystemProcess, startServerProcess } from "./processes.js";

/** One measured phase. */
export interface HotPathRow {
  readonly system: string;
  readonly connections: number;
  readonly decisionsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly callsPerDecision: number;
  readonly engineCpuMsPerDecision: number;
  /** The serving process's own CPU per decision (Node: HTTP, handler, SDK). */
  readonly serverCpuMsPerDecision: number;
  /** Answers other than 200 and 429, and connection errors. */
  readonly errors: number;
  /** Decisions/s of every round, lowest first (the row is the median round). */
  readonly rounds: readonly number[];
}

const CAPACITY = 1_000_000_000;

/** Runs the comparison. */
export async function hotPath(
  ddb: DynamoLocal,
  options: { seconds: number; connections: readonly number[]; rounds: number },
): Promise<HotPathRow[]> {
  const rulesFile = join(tmpdir(), `tokenbank-bench-rules-${process.pid}.yaml`);
  writeFileSync(rulesFile, "rules: []\n");
  // tokenbank as `npm start` runs it (leases on), and with every decision a write of its own.
  const tokenbanks = [
    { name: "tokenbank (npm start, 1 region)", leaseMs: undefined },
    { name: "tokenbank, leases off (--lease-ms 0)", leaseMs: 0 },
  ];
  const started: {
    name: string;
    url: string;
    stats: () => Promise<{ calls: number; decisions: number }>;
    cpuMs: () => number;
    stop: () => Promise<void>;
  }[] = [];
  const servers: ServerProcess[] = [];
  try {
    for (const [i, t] of tokenbanks.entries()) {
      const tb = await startLocalSystemProcess({
        regions: ["us-east-1"],
        lagMs: 800,
        endpoint: ddb.endpoint,
        table: `hot${i}-${Date.now()}`,
        port: await freePorts(1),
        controlPort: await freePorts(1),
        rulesFile,
        ...(t.leaseMs === undefined ? {} : { leaseMs: t.leaseMs }),
        namespace: `hot${i}t${Date.now()}`,
      });
      const url = tb.urls[0] as string;
      started.push({
        name: t.name,
        url: `${url}/rate`,
        cpuMs: () => tb.cpuMs(),
        stop: () => tb.stop(),
        stats: async () => {
          const s = (await (await fetch(`${tb.controlUrl}/stats`)).json()) as {
            regions: Record<string, { rate: { calls: Record<string, number>; limiter: { decisions: number } } }>;
          };
          const r = Object.values(s.regions)[0];
          const calls = Object.entries(r?.rate.calls ?? {})
            .filter(([k]) => !k.startsWith("failed."))
            .reduce((a, [, v]) => a + v, 0);
          return { calls, decisions: r?.rate.limiter.decisions ?? 0 };
        },
      });
      const put = await fetch(`${url}/buckets/cmp`, {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ capacity: CAPACITY, refillRate: 1 }),
      });
      if (!put.ok) throw new Error(`PUT /buckets/cmp: ${put.status}`);
    }
    for (const kind of ["floor", "rlf", "textbook"] as const) servers.push(await startServerProcess(kind, ddb.endpoint, CAPACITY, 1));
    const systems = [
      ...started.map(({ name, url, stats, cpuMs }) => ({ name, url, stats, cpuMs })),
      ...servers.map((s) => ({ name: s.name, url: `${s.url}/`, stats: () => s.stats(), cpuMs: () => s.cpuMs() })),
    ];
    const body = JSON.stringify({ key: "cmp" });
    for (let round = 0; round < 3; round++) for (const sys of systems) await runAutocannon(sys.url, body, 16, 3);
    // Several rounds, each one phase per system and concurrency in turn; the median round counts.
    const samples = new Map<string, HotPathRow[]>();
    for (let round = 0; round < options.rounds; round++) {
      for (const connections of options.connections) {
        for (const sys of systems) {
          const before = await sys.stats();
          const cpu = ddb.cpuMs();
          const serverCpu = sys.cpuMs();
          const r = await runAutocannon(sys.url, body, connections, options.seconds);
          const engine = ddb.cpuMs() - cpu;
          const served = sys.cpuMs() - serverCpu;
          const after = await sys.stats();
          const decisions = Math.max(1, after.decisions - before.decisions);
          const bad = Object.entries(r.statusCodeStats)
            .filter(([s]) => s !== "200" && s !== "429")
            .reduce((a, [, v]) => a + v.count, 0);
          const id = `${sys.name}|${connections}`;
          samples.set(id, [
            ...(samples.get(id) ?? []),
            {
              system: sys.name,
              connections,
              decisionsPerSecond: decisions / r.seconds,
              p50Ms: r.p50Ms,
              p99Ms: r.p99Ms,
              callsPerDecision: (after.calls - before.calls) / decisions,
              engineCpuMsPerDecision: engine / decisions,
              serverCpuMsPerDecision: served / decisions,
              errors: bad + r.errors,
              rounds: [],
            },
          ]);
        }
      }
    }
    const rows: HotPathRow[] = [];
    for (const connections of options.connections) {
      for (const sys of systems) {
        const list = [...(samples.get(`${sys.name}|${connections}`) ?? [])].sort((a, b) => a.decisionsPerSecond - b.decisionsPerSecond);
        const median = list[Math.floor(list.length / 2)] as HotPathRow;
        rows.push({ ...median, rounds: list.map((x) => Math.round(x.decisionsPerSecond)) });
      }
    }
    return rows;
  } finally {
    for (const s of servers) await s.stop();
    for (const t of started) await t.stop();
  }
}
