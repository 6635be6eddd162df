/**
 * Every benchmark participant in its own process: the local tokenbank system (`npm start`'s
 * entry point), the comparison servers, the open-loop generator and autocannon. The benchmark
 * process only starts them, waits for them and reads what they print; each one is stopped by
 * its process id.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { portInUse, processCpuMs } from "../../local/dynamodb-local.js";
import type { LoadPlan, TargetResult } from "./open-loop.js";

const ROOT = join(import.meta.dirname, "../..");
/** `node --import tsx FILE`: one process per participant (the tsx command would add a wrapper process). */
const NODE = process.execPath;
const tsx = (file: string, ...args: string[]) => ["--import", "tsx", join(ROOT, file), ...args];
const ENV = { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" };

/** Every child still running: killed when this process exits, however it exits. */
const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of running) {
    try {
      if (child.pid !== undefined) process.kill(child.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
});

/** Spawns a participant and tracks it until it exits. */
function start(command: string, args: string[], stdin: "ignore" | "pipe" = "ignore"): ChildProcess {
  const child = spawn(command, args, { cwd: ROOT, env: ENV, stdio: [stdin, "pipe", "pipe"] });
  running.add(child);
  child.once("exit", () => running.delete(child));
  return child;
}

/** `n` consecutive TCP ports free on 127.0.0.1 right now (a region per port, counting up). */
export async function freePorts(n: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    let free = true;
    for (let p = base; p < base + n && free; p++) free = !(await portInUse(p));
    if (free) return base;
  }
  throw new Error(`no ${n} consecutive free ports found`);
}

/** Stops a child by its pid and waits for it to exit (SIGKILL after 5 s). */
export function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const kill = (signal: NodeJS.Signals) => {
      try {
        if (child.pid !== undefined) process.kill(child.pid, signal);
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(() => kill("SIGKILL"), 5000);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    kill("SIGTERM");
  });
}

/** Resolves with the first stdout line that `match` accepts; rejects if the child exits first. */
function waitForLine(child: ChildProcess, match: (line: string) => boolean, what: string, timeoutMs = 90_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffer = "";
    let err = "";
    const timer = setTimeout(() => reject(new Error(`${what} did not start in ${timeoutMs} ms: ${err.slice(-500)}`)), timeoutMs);
    child.stderr?.on("data", (d: Buffer) => {
      err += d.toString();
      if (process.env.BENCH_CHILD_STDERR) process.stderr.write(d);
    });
    child.stdout?.on("data", (d: Buffer) => {
      buffer += d.toString();
      const lines = buffer.split("\n");
      lines.pop(); // only whole lines
      for (const line of lines) {
        if (match(line)) {
          clearTimeout(timer);
          resolve(line);
          return;
        }
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited with code ${code}: ${err.slice(-800)}`));
    });
  });
}

/** A running local tokenbank system in its own process. */
export interface LocalSystemProcess {
  readonly urls: readonly string[];
  /** CPU the system's process has used, ms. */
  cpuMs(): number;
  readonly controlUrl: string;
  stop(): Promise<void>;
}

/** Starts `npm start`'s entry point with these options against a running DynamoDB Local. */
export async function startLocalSystemProcess(options: {
  readonly regions: readonly string[];
  readonly lagMs: number;
  readonly endpoint: string;
  readonly table: string;
  readonly port: number;
  readonly controlPort: number;
  readonly rulesFile: string;
  /** `--lease-ms` (default: the system's own, 100). */
  readonly leaseMs?: number;
  /** `--dynamodb-namespace`: its own stream records in the shared engine (see `LocalSystemOptions.dynamoNamespace`). */
  readonly namespace?: string;
}): Promise<LocalSystemProcess> {
  const child = start(
    NODE,
    tsx(
      "local/start.ts",
      "--regions",
      options.regions.join(","),
      "--lag-ms",
      String(options.lagMs),
      "--dynamodb-endpoint",
      options.endpoint,
      "--table",
      options.table,
      "--port",
      String(options.port),
      "--control-port",
      String(options.controlPort),
      "--rules",
      options.rulesFile,
      ...(options.leaseMs === undefined ? [] : ["--lease-ms", String(options.leaseMs)]),
      ...(options.namespace === undefined ? [] : ["--dynamodb-namespace", options.namespace]),
    ),
  );
  await waitForLine(child, (l) => l.includes("Ctrl-C stops everything"), "the local system");
  return {
    cpuMs: () => processCpuMs(child.pid),
    urls: options.regions.map((_, i) => `http://127.0.0.1:${options.port + i}`),
    controlUrl: `http://127.0.0.1:${options.controlPort}`,
    stop: () => stopChild(child),
  };
}

/** A comparison server in its own process. */
export interface ServerProcess {
  readonly name: string;
  readonly url: string;
  /** CPU the server's process has used, ms. */
  cpuMs(): number;
  /** DynamoDB calls and decisions so far. */
  stats(): Promise<{ calls: number; decisions: number }>;
  stop(): Promise<void>;
}

/** Starts `bench/load/server.ts KIND`. */
export async function startServerProcess(kind: "floor" | "rlf" | "textbook", endpoint: string, capacity: number, refill: number) {
  const child = start(NODE, tsx("bench/load/server.ts", kind, endpoint, String(capacity), String(refill)), "pipe");
  const line = await waitForLine(child, (l) => l.startsWith("{") && l.includes('"url"'), `the ${kind} server`);
  const { url, name } = JSON.parse(line) as { url: string; name: string };
  const server: ServerProcess = {
    name,
    url,
    cpuMs: () => processCpuMs(child.pid),
    stats: () =>
      new Promise((resolve, reject) => {
        let buffer = "";
        const onData = (d: Buffer) => {
          buffer += d.toString();
          const found = buffer
            .split("\n")
            .slice(0, -1)
            .find((l) => l.includes('"calls"'));
          if (found) {
            child.stdout?.off("data", onData);
            resolve(JSON.parse(found));
          }
        };
        child.stdout?.on("data", onData);
        child.stdin?.write("stats\n", (e) => e && reject(e));
      }),
    stop: () => stopChild(child),
  };
  return server;
}

/** Runs the open-loop generator in its own process. */
export async function runOpenLoop(plan: LoadPlan): Promise<TargetResult[]> {
  const child = start(NODE, tsx("bench/load/open-loop.ts", JSON.stringify(plan)));
  const line = await waitForLine(child, (l) => l.startsWith("["), "the load generator", (plan.seconds + 120) * 1000);
  await stopChild(child);
  return JSON.parse(line) as TargetResult[];
}

/** What autocannon measured. */
export interface CannonResult {
  readonly requests: number;
  readonly seconds: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly non2xx: number;
  readonly errors: number;
  readonly statusCodeStats: Record<string, { count: number }>;
}

/** Runs autocannon's command line (its own process) against `POST url` for `seconds`. */
export async function runAutocannon(url: string, body: string, connections: number, seconds: number): Promise<CannonResult> {
  const child = start(join(ROOT, "node_modules/.bin/autocannon"), [
    "-j",
    "-c",
    String(connections),
    "-d",
    String(seconds),
    "-m",
    "POST",
    "-H",
    "content-type=application/json",
    "-b",
    body,
    url,
  ]);
  const line = await waitForLine(child, (l) => l.startsWith("{"), "autocannon", (seconds + 60) * 1000);
  await stopChild(child);
  const r = JSON.parse(line) as {
    requests: { total: number };
    duration: number;
    latency: { p50: number; p99: number };
    non2xx: number;
    errors: number;
    timeouts: number;
    statusCodeStats?: Record<string, { count: number }>;
  };
  return {
    requests: r.requests.total,
    seconds: r.duration,
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    non2xx: r.non2xx,
    errors: r.errors + r.timeouts,
    statusCodeStats: r.statusCodeStats ?? {},
  };
}
