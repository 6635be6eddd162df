/**
 * The `tokenbank` command line (`npx tokenbank --help`).
 *
 *   tokenbank start [npm start options]
 *   tokenbank reconcile [--region R] [--evict R [--force]] [--dry-run] [--json]
 *       [--table T --endpoint URL]     (AWS: --region and --table; local: found automatically)
 *   tokenbank simulate [--scenario NAME|FILE|all] [--borrow on|off] [--json]
 *
 * Exit codes: 0 success (reconcile: no violations), 1 violations found or eviction refused,
 * 2 usage or other errors.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { DynamoBucketStore, makeDynamoClient } from "../lambda/adapters/dynamodb/store.js";
import { loadRulesFile } from "../lambda/adapters/rules-file.js";
import { systemClock } from "../lambda/adapters/system-clock.js";
import { formatReport, reconcile } from "../lambda/app/reconciler.js";
import { parseTopology } from "../lambda/app/topology.js";
import { readState } from "../local/state.js";
import { TokenBankClient } from "../sdk/index.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const USAGE = `tokenbank — globally distributed token buckets

Usage:
  tokenbank rate KEY [--tokens N] [--idempotency-key K] [--json]     take tokens (exit 0 allowed, 1 denied)
  tokenbank status KEY [--json]                                     the bucket in every region, as a table
  tokenbank buckets get|delete KEY
  tokenbank buckets put|patch KEY [--capacity N] [--refill-rate R] [--ttl S] [--on-error allow|deny] [--inherit MODE]
      common: --endpoint URL[,URL…] (default: the local system, else http://127.0.0.1:8787), --sigv4
  tokenbank bench [npm run bench options]
  tokenbank start [options]          run the local multi-region system (same as npm start; see --help there)
  tokenbank reconcile [options]      snapshot, verify I1/I2, repair, return idle share, expire, evict
      --region R                     the region whose replica to reconcile (local: all regions)
      --regions LIST                 every serving region (AWS; local: found automatically)
      --table T                      table name (AWS)
      --endpoint URL                 DynamoDB endpoint (local: found automatically)
      --rules FILE                   hold rule buckets' rows to this rules file (re-base any that differ)
      --evict R                      hand region R's share to this region (operator-only; unsafe if R is alive)
      --force                        evict even though R was heard from recently
      --dry-run                      print what it would do; write nothing
      --json                         print JSON (with a "violations" list)
  tokenbank simulate [options]       the multi-region simulator (see npm run simulate -- --help)

Exit codes: 0 ok (allowed), 1 denied, violations found or an eviction refused, 2 usage or errors.`;

/** A spinner on stderr for anything slower than a second (only on a terminal). */
async function withSpinner<T>(label: string, work: Promise<T>): Promise<T> {
  if (!process.stderr.isTTY) return work;
  const frames = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏";
  let i = 0;
  let shown = false;
  const timer = setInterval(() => {
    shown = true;
    process.stderr.write(`\r${frames[i++ % frames.length]} ${label}`);
  }, 1000 / 12);
  const start = setTimeout(() => undefined, 1000);
  try {
    return await work;
  } finally {
    clearInterval(timer);
    clearTimeout(start);
    if (shown) process.stderr.write("\r\x1b[K");
  }
}

function client(endpoint: string | undefined, sigv4: boolean): TokenBankClient {
  const local = readState();
  const endpoints = endpoint?.split(",").map((e) => e.trim()) ?? local?.regions.map((r) => r.url) ?? ["http://127.0.0.1:8787"];
  return new TokenBankClient({ endpoints, ...(sigv4 ? { sigv4: {} } : {}) });
}

const common = {
  endpoint: { type: "string" },
  sigv4: { type: "boolean", default: false },
  json: { type: "boolean", default: false },
} as const;

async function rateCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { ...common, tokens: { type: "string", default: "1" }, "idempotency-key": { type: "string" } },
  });
  const [key] = positionals;
  if (!key) throw new Error("usage: tokenbank rate KEY [--tokens N]");
  const tokens = Number(values.tokens);
  if (!Number.isInteger(tokens) || tokens < 0) throw new Error(`--tokens: "${values.tokens}" is not a whole number ≥ 0`);
  const d = await withSpinner(
    "deciding…",
    client(values.endpoint, values.sigv4).rate(key, {
      tokens,
      ...(values["idempotency-key"] ? { idempotencyKey: values["idempotency-key"] } : {}),
    }),
  );
  if (values.json) console.log(JSON.stringify(d, null, 2));
  else
    console.log(
      d.allowed
        ? `allowed: ${d.key} −${tokens}, ${d.remaining} of ${d.capacity} left in ${d.region}${d.buckets.length > 1 ? ` (${d.buckets.length} buckets)` : ""}`
        : `denied: ${d.key} (${d.reason ?? "insufficient"}), ${
            d.reason === "exceeds_capacity"
              ? "more than the capacity: retrying will not help"
              : d.retryAfterMs === null
                ? "more than this region holds now: retry later"
                : `retry in ${d.retryAfterMs} ms`
          }`,
    );
  return d.allowed ? 0 : 1;
}

async function statusCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: common });
  const [key] = positionals;
  if (!key) throw new Error("usage: tokenbank status KEY [--json]");
  const s = (await withSpinner("reading…", client(values.endpoint, values.sigv4).status(key))) as {
    key: string;
    capacity: number;
    refillRate: number;
    tokens: number;
    region: string;
    syncLagMs: number;
    degraded: boolean;
    unreachable: string[];
    regions: { region: string; tokens: number; share: number; rateShare: number; capacity: number; ageMs: number }[];
  };
  if (values.json) {
    console.log(JSON.stringify(s, null, 2));
    return 0;
  }
  console.log(
    `${s.key}: ${s.tokens} of ${s.capacity} tokens world-wide, refill ${s.refillRate}/s (as ${s.region} sees it; sync lag ${s.syncLagMs} ms${s.degraded ? `; DEGRADED: ${s.unreachable.join(", ")} unreachable` : ""})`,
  );
  console.log(
    `${"region".padEnd(16)} ${"tokens".padStart(8)} ${"capacity".padStart(9)} ${"share".padStart(7)} ${"rate".padStart(7)} ${"age ms".padStart(8)}`,
  );
  for (const r of s.regions) {
    console.log(
      `${r.region.padEnd(16)} ${String(r.tokens).padStart(8)} ${String(r.capacity).padStart(9)} ${(r.share * 100).toFixed(1).padStart(6)}% ${(r.rateShare * 100).toFixed(1).padStart(6)}% ${String(r.ageMs).padStart(8)}`,
    );
  }
  return 0;
}

async function bucketsCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      ...common,
      capacity: { type: "string" },
      "refill-rate": { type: "string" },
      ttl: { type: "string" },
      "on-error": { type: "string" },
      inherit: { type: "string" },
    },
  });
  const [verb, key] = positionals;
  if (!verb || !key || !["get", "put", "patch", "delete"].includes(verb))
    throw new Error("usage: tokenbank buckets get|put|patch|delete KEY [options]");
  const tb = client(values.endpoint, values.sigv4);
  const num = (v: string | undefined, name: string) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n)) throw new Error(`--${name}: "${v}" is not a number`);
    return n;
  };
  const change = Object.fromEntries(
    Object.entries({
      capacity: num(values.capacity, "capacity"),
      refillRate: num(values["refill-rate"], "refill-rate"),
      ttl: num(values.ttl, "ttl"),
      onError: values["on-error"],
      inherit: values.inherit,
    }).filter(([, v]) => v !== undefined),
  );
  const out =
    verb === "get"
      ? await tb.buckets.get(key)
      : verb === "put"
        ? await tb.buckets.put(key, change)
        : verb === "patch"
          ? await tb.buckets.patch(key, change)
          : await tb.buckets.delete(key);
  console.log(out === undefined ? `deleted ${key}` : JSON.stringify(out, null, 2));
  return 0;
}

async function reconcileCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      region: { type: "string" },
      regions: { type: "string" },
      table: { type: "string" },
      endpoint: { type: "string" },
      evict: { type: "string" },
      rules: { type: "string" },
      force: { type: "boolean", default: false },
      "dry-run": { type: "boolean", default: false },
      json: { type: "boolean", default: false },
    },
  });
  const local = values.table ? undefined : readState();
  if (!local && !(values.region && values.table)) {
    throw new Error("no local system is running (npm start), so give --region and --table (and --regions) to reconcile against AWS");
  }
  const table = values.table ?? (local?.tableName as string);
  const allRegions = values.regions ?? local?.regions.map((r) => r.region).join(",") ?? (values.region as string);
  const all = local?.regions.map((r) => r.region) ?? [];
  // An eviction runs in one region (the first other than the evicted one) unless --region says where.
  const targets = values.region ? [values.region] : values.evict ? all.filter((r) => r !== values.evict).slice(0, 1) : all;
  const endpoint = values.endpoint ?? local?.dynamoEndpoint;
  // A rule's buckets are held to the rules file when one is given (as the scheduled reconciler holds them to its own).
  if (values.rules !== undefined && !existsSync(values.rules)) throw new Error(`--rules ${values.rules}: no such file`);
  const rules = values.rules === undefined ? [] : loadRulesFile(values.rules);
  let bad = false;
  const reports = [];
  for (const region of targets) {
    const store = new DynamoBucketStore({
      client: makeDynamoClient({ region, endpoint, requestTimeoutMs: 5000 }),
      tableName: table,
      region,
    });
    const report = await reconcile(
      { store, clock: systemClock, topology: parseTopology(region, allRegions), rules },
      { dryRun: values["dry-run"], evict: values.evict, force: values.force, ...(local ? { quietMs: 3000, aliveMs: 5000 } : {}) },
    );
    reports.push(report);
    if (report.violations.length > 0 || report.actions.some((a) => a.action === "refused")) bad = true;
  }
  if (values.json)
    console.log(JSON.stringify(reports.length === 1 ? reports[0] : reports, (_k, v) => (typeof v === "bigint" ? v.toString() : v), 2));
  else console.log(reports.map(formatReport).join("\n\n"));
  return bad ? 1 : 0;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "start":
      return spawnSync("npx", ["tsx", join(ROOT, "local/start.ts"), ...rest], { stdio: "inherit" }).status ?? 2;
    case "simulate":
      return spawnSync("npx", ["tsx", join(ROOT, "sim/run.ts"), ...rest], { stdio: "inherit" }).status ?? 2;
    case "reconcile":
      return reconcileCommand(rest);
    case "rate":
      return rateCommand(rest);
    case "status":
      return statusCommand(rest);
    case "buckets":
      return bucketsCommand(rest);
    case "bench":
      return spawnSync("npx", ["tsx", join(ROOT, "bench/run.ts"), ...rest], { stdio: "inherit" }).status ?? 2;
    case undefined:
    case "help":
    case "--help":
    case "-h":
      console.log(USAGE);
      return command === undefined ? 2 : 0;
    default:
      console.error(`tokenbank: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    const e = error as Error & { code?: string; status?: number };
    console.error(`tokenbank: ${e.code ? `${e.code}: ` : ""}${e.message}`);
    process.exit(2);
  },
);
