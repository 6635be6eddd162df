/**
 * Bounded key cardinality at scale (issue 15): N distinct header values (default 10,000) into
 * the local system (2 regions, its own process, one DynamoDB Local), first on a rule with a cap
 * below N (`maxBuckets`, counted per region: all into one region), then on a hashed rule with
 * the default cap (into both regions). Reports how many requests
 * each answer got, and checks every slice row of every replica for the TTL attribute.
 * `tsx bench/cardinality.ts [N]`. Exits non-zero when a row lacks the TTL attribute, the cap
 * admitted more buckets than it allows, or an answer other than 200 and the cap's 429 came back.
 */
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ScanCommand } from "@aws-sdk/client-dynamodb";
import { makeDynamoClient } from "../lambda/adapters/dynamodb/store.js";
import { startDynamoLocal } from "../local/dynamodb-local.js";
import { freePorts, startLocalSystemProcess } from "./load/processes.js";

const total = Number(process.argv[2] ?? 10_000);
const cap = Math.floor(total * 0.9);
const REGIONS = ["us-east-1", "eu-central-1"];
const rulesFile = join(tmpdir(), `tokenbank-cardinality-${process.pid}.yaml`);
writeFileSync(
  rulesFile,
  `rules:
  - name: per-user
    key: "user-{{ .Request.Header.X-User-Id }}"
    capacity: 5
    refillRate: 1
    ttl: 600
    maxBuckets: ${cap}
  - name: per-agent
    key: "agent-{{ .Request.Header.X-API-Key | sha256 }}"
    capacity: 5
    refillRate: 1
`,
);

const ddb = await startDynamoLocal();
const namespace = `card${Date.now()}`;
const table = `cardinality-${Date.now()}`;
const system = await startLocalSystemProcess({
  regions: REGIONS,
  lagMs: 200,
  endpoint: ddb.endpoint,
  table,
  port: await freePorts(REGIONS.length),
  controlPort: await freePorts(1),
  rulesFile,
  namespace,
});
let failed = false;
try {
  /** Sends one request per header value, 32 at a time, alternating over `urls`; counts answers by status and code. */
  const send = async (header: string, prefix: string, urls: readonly string[]) => {
    const counts: Record<string, number> = {};
    let next = 0;
    const started = Date.now();
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < total) {
          const i = next++;
          const res = await fetch(`${urls[i % urls.length]}/rate`, {
            method: "POST",
            headers: { "content-type": "application/json", [header]: `${prefix}-${i}` },
            body: "{}",
          });
          const body = (await res.json()) as { error?: { code?: string } };
          const what = `${res.status}${body.error?.code ? ` ${body.error.code}` : ""}`;
          counts[what] = (counts[what] ?? 0) + 1;
        }
      }),
    );
    return { counts, seconds: (Date.now() - started) / 1000 };
  };
  // The cap counts per region: every new user goes to one region, so it is exceeded there.
  const users = await send("x-user-id", "user", system.urls.slice(0, 1));
  console.log(`${total} distinct X-User-Id values (per-user, maxBuckets ${cap}) in ${users.seconds.toFixed(1)} s:`, users.counts);
  const agents = await send("x-api-key", "secret", system.urls);
  console.log(`${total} distinct X-API-Key values (per-agent, hashed, default cap) in ${agents.seconds.toFixed(1)} s:`, agents.counts);
  await new Promise((r) => setTimeout(r, 3000)); // replication of the last rows
  const nowS = Date.now() / 1000;
  for (const region of REGIONS) {
    const client = makeDynamoClient({ region, endpoint: ddb.endpoint, requestTimeoutMs: 30_000, localNamespace: namespace });
    let cursor: Record<string, never> | undefined;
    let slices = 0;
    let withoutTtl = 0;
    const userBuckets = new Set<string>();
    let plainSecrets = 0;
    do {
      const out = await client.send(new ScanCommand({ TableName: table, ExclusiveStartKey: cursor }));
      for (const item of out.Items ?? []) {
        if (!item.sk?.S?.startsWith("slice#")) continue;
        slices++;
        if (!(Number(item.exp?.N) > nowS)) withoutTtl++;
        if (item.pk?.S?.startsWith("user-")) userBuckets.add(item.pk.S);
        if (item.pk?.S?.includes("secret-")) plainSecrets++;
      }
      cursor = out.LastEvaluatedKey as Record<string, never> | undefined;
    } while (cursor);
    client.destroy();
    console.log(
      `${region} replica: ${slices} slice rows, ${withoutTtl} without a future TTL attribute; ${userBuckets.size} per-user buckets; ${plainSecrets} keys holding a header value in the clear`,
    );
    if (withoutTtl > 0 || plainSecrets > 0 || userBuckets.size > cap) failed = true;
  }
  const capped = users.counts["429 rule.bucket_cap_reached"] ?? 0;
  if ((users.counts["200"] ?? 0) !== cap || capped !== total - cap) failed = true;
  if ((agents.counts["200"] ?? 0) !== total) failed = true;
} finally {
  await system.stop();
  await ddb.stop();
}
console.log(failed ? "FAILED" : "ok");
process.exit(failed ? 1 : 0);
