/**
 * `npm start`: the local tokenbank system. Starts DynamoDB Local, creates the table and
 * serves the Lambda handlers on 127.0.0.1 through an API Gateway v2 event adapter.
 * Ctrl-C stops everything it started.
 */
import { parseArgs } from "node:util";
import { DynamoBucketStore, makeDynamoClient } from "../lambda/adapters/dynamodb/store.js";
import { loadRulesFile } from "../lambda/adapters/rules-file.js";
import { systemClock } from "../lambda/adapters/system-clock.js";
import { startDynamoLocal } from "./dynamodb-local.js";
import { serveRoutes } from "./http-adapter.js";
import { regionRoutes } from "./region.js";
import { ensureTable } from "./table.js";

const USAGE = `Usage: npm start -- [options]

  --port N            HTTP port of the region (default 8787)
  --region NAME       region name (default us-east-1)
  --rules FILE        rules file (default buckets.yaml; absent = no rules)
  --data-dir DIR      persist DynamoDB Local data in DIR (default: in memory)
  --dynamodb-port N   DynamoDB Local port (default: a free port)
  --table NAME        table name (default tokenbank)
  -h, --help          this help`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: "string", default: "8787" },
      region: { type: "string", default: "us-east-1" },
      rules: { type: "string", default: "buckets.yaml" },
      "data-dir": { type: "string" },
      "dynamodb-port": { type: "string" },
      table: { type: "string", default: "tokenbank" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port: "${values.port}" is not a port number`);
  const rules = loadRulesFile(values.rules);

  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  };
  let stopping = false;
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      console.log("\nstopping…");
      void stopAll().then(() => process.exit(0));
    });
  }
  try {
    const ddb = await startDynamoLocal({
      ...(values["data-dir"] ? { dataDir: values["data-dir"] } : {}),
      ...(values["dynamodb-port"] ? { port: Number(values["dynamodb-port"]) } : {}),
    });
    stops.push(ddb.stop);
    const client = makeDynamoClient({ region: values.region, endpoint: ddb.endpoint });
    await ensureTable(client, values.table);
    const store = new DynamoBucketStore({ client, tableName: values.table, region: values.region });
    const server = await serveRoutes(regionRoutes({ store, clock: systemClock, rules }), port);
    stops.push(server.close);
    console.log(`tokenbank local system
  region ${values.region}: ${server.url}   (DynamoDB Local: ${ddb.endpoint}, ${values["data-dir"] ? `data in ${values["data-dir"]}` : "in memory"})
  rules: ${rules.length} from ${values.rules}

Try it:
  curl -s -X PUT ${server.url}/buckets/demo -H 'content-type: application/json' -d '{"capacity": 10, "refillRate": 1}'
  curl -s -X POST ${server.url}/rate -H 'content-type: application/json' -d '{"key": "demo"}'
  curl -s ${server.url}/status/demo

Ctrl-C stops everything.`);
  } catch (error) {
    console.error(`tokenbank: ${(error as Error).message}`);
    await stopAll();
    process.exit(1);
  }
}

void main();
