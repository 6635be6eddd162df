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
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { DynamoBucketStore, makeDynamoClient } from "../lambda/adapters/dynamodb/store.js";
import { systemClock } from "../lambda/adapters/system-clock.js";
import { formatReport, reconcile } from "../lambda/app/reconciler.js";
import { parseTopology } from "../lambda/app/topology.js";
import { readState } from "../local/state.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const USAGE = `tokenbank — globally distributed token buckets

Usage:
  tokenbank start [options]          run the local multi-region system (same as npm start; see --help there)
  tokenbank reconcile [options]      snapshot, verify I1/I2, repair, return idle share, expire, evict
      --region R                     the region whose replica to reconcile (local: all regions)
      --regions LIST                 every serving region (AWS; local: found automatically)
      --table T                      table name (AWS)
      --endpoint URL                 DynamoDB endpoint (local: found automatically)
      --evict R                      hand region R's share to this region (operator-only; unsafe if R is alive)
      --force                        evict even though R was heard from recently
      --dry-run                      print what it would do; write nothing
      --json                         print JSON (with a "violations" list)
  tokenbank simulate [options]       the multi-region simulator (see npm run simulate -- --help)

Exit codes: 0 ok, 1 violations found or an eviction refused, 2 usage or errors.`;

async function reconcileCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      region: { type: "string" },
      regions: { type: "string" },
      table: { type: "string" },
      endpoint: { type: "string" },
      evict: { type: "string" },
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
  let bad = false;
  const reports = [];
  for (const region of targets) {
    const store = new DynamoBucketStore({
      client: makeDynamoClient({ region, endpoint, requestTimeoutMs: 5000 }),
      tableName: table,
      region,
    });
    const report = await reconcile(
      { store, clock: systemClock, topology: parseTopology(region, allRegions) },
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
    console.error(`tokenbank: ${(error as Error).message}`);
    process.exit(2);
  },
);
