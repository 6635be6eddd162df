/**
 * `npm run bench`: starts DynamoDB Local and prints the benchmark tables.
 * Options: --decisions N (per phase, default 2000).
 */

import { cpus } from "node:os";
import { parseArgs } from "node:util";
import { DynamoBucketStore, makeDynamoClient } from "../lambda/adapters/dynamodb/store.js";
import { startDynamoLocal } from "../local/dynamodb-local.js";
import { ensureTable } from "../local/table.js";
import { runHotPath } from "./hot-path.js";

const { values } = parseArgs({ options: { decisions: { type: "string", default: "2000" } } });
const decisions = Number(values.decisions);

const ddb = await startDynamoLocal();
try {
  const client = makeDynamoClient({ region: "us-east-1", endpoint: ddb.endpoint, requestTimeoutMs: 5000 });
  await ensureTable(client, "bench");
  const store = new DynamoBucketStore({ client, tableName: "bench", region: "us-east-1" });
  console.log(`tokenbank hot path — DynamoDB Local, ${cpus().length} cores, ${new Date().toISOString()}, node ${process.version}`);
  console.log(`command: npm run bench -- --decisions ${decisions}\n`);
  const rows = await runHotPath(store, { decisions });
  const base = rows[0]?.decisions && rows[0].seconds ? rows[0].decisions / rows[0].seconds : 1;
  console.table(
    rows.map((r) => ({
      phase: r.name,
      clients: r.clients,
      decisions: r.decisions,
      allowed: r.allowed,
      "decisions/s": Math.round(r.decisions / r.seconds),
      "× 1-client": Number((r.decisions / r.seconds / base).toFixed(2)),
      "DynamoDB calls/decision": Number(r.callsPerDecision.toFixed(3)),
      "calls/allowed": Number(r.callsPerAllowed.toFixed(3)),
      "p50 ms": Number(r.p50Ms.toFixed(2)),
      "p99 ms": Number(r.p99Ms.toFixed(2)),
    })),
  );
} finally {
  await ddb.stop();
}
