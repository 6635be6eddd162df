/**
 * Our own overhead, as separate lines: the decision handler's time per request with the in-memory
 * store (no database), each Lambda bundle's size (minified, AWS SDK bundled, as the CDK deploys it) and its module
 * initialisation time, each against a baseline measured in the same run.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import middy from "@middy/core";
import { build } from "esbuild";
import { MemoryBucketStore } from "../lambda/adapters/memory/store.js";
import { BucketAdmin } from "../lambda/app/buckets.js";
import { Limiter } from "../lambda/app/limiter.js";
import { makeRateHandler } from "../lambda/handlers/rate.js";
import { bundleFunction, FUNCTION_ENV } from "./bundle.js";

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))] ?? 0;

/**
 * Handler time per decision (µs, p50/p99) with the in-memory store: with leases (one busy key,
 * so most decisions are answered from a lease), without (every decision a take, the path of a
 * bucket nobody contends), and a trivial middy handler's.
 */
export async function handlerOverhead(n = 20_000) {
  const store = new MemoryBucketStore("bench");
  const clock = { nowUs: () => BigInt(Math.floor((performance.timeOrigin + performance.now()) * 1000)), sleep: async () => undefined };
  await new BucketAdmin({ store, clock }).put("k", { capacity: 1_000_000_000, refillRate: 1, onError: "deny" }, "bench");
  const handler = makeRateHandler({ limiter: new Limiter({ store, clock, rules: [] }), region: "bench" });
  const unleased = makeRateHandler({ limiter: new Limiter({ store, clock, rules: [], leaseMs: 0 }), region: "bench" });
  const trivial = middy(async (event: { body?: string }) => ({ statusCode: 200, body: JSON.stringify(JSON.parse(event.body ?? "{}")) }));
  const event = {
    version: "2.0",
    rawPath: "/rate",
    headers: { "content-type": "application/json" },
    body: '{"key":"k"}',
    requestContext: { http: { method: "POST" } },
  } as never;
  const time = async (f: () => Promise<unknown>) => {
    for (let i = 0; i < 2000; i++) await f(); // warm the JIT
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const t = process.hrtime.bigint();
      await f();
      out.push(Number(process.hrtime.bigint() - t) / 1000);
    }
    return { p50: pct(out, 0.5), p99: pct(out, 0.99) };
  };
  const rate = await time(() => handler(event, {} as never));
  const perWrite = await time(() => unleased(event, {} as never));
  const baseline = await time(() => trivial(event, {} as never));
  return { rate, perWrite, baseline };
}

/**
 * Each function's bundle (minified ESM, as the CDK builds it): bytes and module init time (ms), the
 * median of `rounds` fresh processes. The rounds go round-robin over every bundle and the empty
 * baseline, so a burst of noise on this shared machine hits them all alike rather than one function.
 */
export async function bundles(root: string, rounds = 9) {
  // Inside the project (ignored by git).
  const out = join(root, ".bench");
  mkdirSync(out, { recursive: true });
  const entries = readdirSync(join(root, "lambda/functions")).filter((f) => f.endsWith(".ts"));
  const env = { ...process.env, ...FUNCTION_ENV };
  const initOnce = (file: string) => {
    const code = `const t = performance.now(); await import(${JSON.stringify(`file://${file}`)}); console.log(performance.now() - t);`;
    return Number(execFileSync("node", ["--input-type=module", "-e", code], { env, encoding: "utf8" }).trim());
  };
  const empty = join(out, "empty.mjs");
  await build({ stdin: { contents: "export const handler = async () => ({});" }, outfile: empty, format: "esm", platform: "node" });
  const files = [{ fn: "", file: empty }];
  for (const entry of entries) {
    const file = join(out, entry.replace(/\.ts$/, ".mjs"));
    await bundleFunction(root, entry, file);
    files.push({ fn: entry.replace(/\.ts$/, ""), file });
  }
  const runs = new Map<string, number[]>(files.map((f) => [f.file, []]));
  for (let round = 0; round < rounds; round++) for (const { file } of files) runs.get(file)?.push(initOnce(file));
  const median = (file: string) => pct(runs.get(file) ?? [], 0.5);
  const rows = files.slice(1).map(({ fn, file }) => ({ fn, bytes: statSync(file).size, initMs: median(file) }));
  return { rows, baselineInitMs: median(empty), rounds };
}
