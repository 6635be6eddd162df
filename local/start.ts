/**
 * `npm start`: the local tokenbank system. Starts DynamoDB Local, a table per region, the
 * Global Tables and event-source emulators, and serves each region's Lambda handlers on
 * 127.0.0.1 through an API Gateway v2 event adapter. Ctrl-C stops everything it started.
 */
import { parseArgs } from "node:util";
import { loadRulesFile } from "../lambda/adapters/rules-file.js";
import { parseTopology } from "../lambda/app/topology.js";
import { describeRule } from "../lambda/core/rules.js";
import { type LocalSystem, startLocalSystem } from "./system.js";

const USAGE = `Usage: npm start -- [options]

  --regions LIST      regions to run (default us-east-1,eu-central-1)
  --weights LIST      initial-split weights, e.g. us-east-1=2,eu-central-1=1 (default equal)
  --port N            first region's HTTP port; the others count up (default 8787)
  --control-port N    control API port (default 8780)
  --lag-ms N          replication lag between regions, ms (default 800)
  --reconcile-every-s N  run the reconciler in every region every N s (default 10; 0 = never)
  --rules FILE        rules file (default buckets.yaml; absent = no rules)
  --data-dir DIR      persist DynamoDB Local data in DIR (default: in memory)
  --dynamodb-port N   DynamoDB Local port (default: a free port)
  --dynamodb-endpoint URL  use a DynamoDB Local that is already running (benchmarks share one)
  --dynamodb-timeout-ms N  every DynamoDB call's timeout (default 1000): a slower call fails (503 or fail-open)
  --lease-ms N        a hot key's lease life (default 100; 0 = no leases: every decision writes)
  --dynamodb-namespace NAME  DynamoDB Local namespace (access key id) of the tables (default local)
  --table NAME        table name (default tokenbank)
  -h, --help          this help`;

function intOption(name: string, value: string, max = 65535): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > max) throw new Error(`--${name}: "${value}" is not a whole number between 0 and ${max}`);
  return n;
}

function namespaceOption(value: string): string {
  if (!/^[A-Za-z0-9]{1,64}$/.test(value)) throw new Error(`--dynamodb-namespace: "${value}" must be 1 to 64 letters or digits`);
  return value;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      regions: { type: "string", default: "us-east-1,eu-central-1" },
      weights: { type: "string" },
      port: { type: "string", default: "8787" },
      "control-port": { type: "string", default: "8780" },
      "lag-ms": { type: "string", default: "800" },
      "reconcile-every-s": { type: "string", default: "10" },
      rules: { type: "string", default: "buckets.yaml" },
      "data-dir": { type: "string" },
      "dynamodb-port": { type: "string" },
      "dynamodb-endpoint": { type: "string" },
      "dynamodb-timeout-ms": { type: "string", default: "1000" },
      "lease-ms": { type: "string", default: "100" },
      "dynamodb-namespace": { type: "string", default: "local" },
      table: { type: "string", default: "tokenbank" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const regions = values.regions
    .split(",")
    .map((r) => r.trim())
    .filter((r) => r !== "");
  if (regions.length === 0 || new Set(regions).size !== regions.length)
    throw new Error(`--regions: "${values.regions}" must list distinct regions`);
  const topology = parseTopology(regions[0] as string, values.regions, values.weights);
  const rules = loadRulesFile(values.rules);

  let system: LocalSystem | undefined;
  let stopping = false;
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      console.log("\nstopping…");
      void (system?.stop() ?? Promise.resolve()).then(() => process.exit(0));
    });
  }
  system = await startLocalSystem({
    regions,
    rules,
    weights: topology.weights,
    basePort: intOption("port", values.port),
    controlPort: intOption("control-port", values["control-port"]),
    lagMs: intOption("lag-ms", values["lag-ms"], 600_000),
    tableName: values.table,
    writeStateFile: true,
    reconcileEveryMs: intOption("reconcile-every-s", values["reconcile-every-s"], 86_400) * 1000,
    ...(values["data-dir"] ? { dataDir: values["data-dir"] } : {}),
    ...(values["dynamodb-port"] ? { dynamoPort: intOption("dynamodb-port", values["dynamodb-port"]) } : {}),
    ...(values["dynamodb-endpoint"] ? { dynamoEndpoint: values["dynamodb-endpoint"] } : {}),
    dynamoTimeoutMs: intOption("dynamodb-timeout-ms", values["dynamodb-timeout-ms"], 30_000),
    leaseMs: intOption("lease-ms", values["lease-ms"], 1000),
    dynamoNamespace: namespaceOption(values["dynamodb-namespace"]),
  });
  const first = system.regions[0] as { url: string };
  console.log(`tokenbank local system (${regions.length} regions, replication lag ${values["lag-ms"]} ms)
${system.regions.map((r) => `  ${r.region.padEnd(16)} ${r.url}`).join("\n")}
  console          ${system.controlUrl}/   (live: each region's tokens and shares, transfers, partition/heal/lag)
  control API      ${system.controlUrl}   (POST /partition, POST /heal, PUT /lag, GET /replication, GET /stats)
  DynamoDB Local   ${system.dynamoEndpoint}   (${values["data-dir"] ? `data in ${values["data-dir"]}` : "in memory"})
  rules            ${rules.length} from ${values.rules}${rules
    .map(
      (r) =>
        `\n    ${r.name.padEnd(12)} ${r.template.source}  (${r.limits.capacity} tokens, ${r.limits.refillRate}/s${r.limits.ttl === undefined ? "" : `, ttl ${r.limits.ttl} s`}): ${describeRule(r)}`,
    )
    .join("")}

Try it:
  curl -s -X PUT ${first.url}/buckets/demo -H 'content-type: application/json' -d '{"capacity": 10, "refillRate": 1}'
  curl -s -X POST ${first.url}/rate -H 'content-type: application/json' -d '{"key": "demo"}'
  curl -s ${first.url}/status/demo

Ctrl-C stops everything.`);
}

main().catch((error: unknown) => {
  console.error(`tokenbank: ${(error as Error).message}`);
  process.exit(1);
});
