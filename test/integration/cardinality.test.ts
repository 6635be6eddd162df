/**
 * Bounded key cardinality: every bucket a templated rule makes expires (a rule without `ttl`
 * gets the documented default), and every slice row carries the TTL attribute in every region,
 * created or taken, so DynamoDB forgets idle ones. Keys that start with `#` (tokenbank's own
 * items) are refused; a body over 64 KiB is a 413.
 */
import { randomUUID } from "node:crypto";
import { ScanCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { makeDynamoClient } from "../../lambda/adapters/dynamodb/store.js";
import { DEFAULT_RULE_TTL_SECONDS } from "../../lambda/core/limits.js";
import { parseRules } from "../../lambda/core/rules.js";
import { type LocalSystem, startLocalSystem } from "../../local/system.js";

const REGIONS = ["us-east-1", "eu-central-1"];
const table = `card-${randomUUID().slice(0, 8)}`;
let system: LocalSystem;
beforeAll(async () => {
  system = await startLocalSystem({
    regions: REGIONS,
    // No ttl given: the default applies.
    rules: parseRules(
      {
        rules: [
          { name: "per-agent", key: "agent-{{ .Request.Header.X-API-Key | sha256 }}", capacity: 5, refillRate: 1 },
          { name: "per-user", key: "user-{{ .Request.Header.X-User-Id }}", capacity: 5, refillRate: 1, maxBuckets: 50 },
        ],
      },
      "test",
    ),
    basePort: 0,
    controlPort: 0,
    lagMs: 200,
    dynamoEndpoint: inject("dynamoEndpoint"),
    tableName: table,
    reconcileEveryMs: 0,
  });
});
afterAll(async () => system?.stop());

const rate = (url: string, headers: Record<string, string>, body = "{}") =>
  fetch(`${url}/rate`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });

describe("bounded cardinality", () => {
  it("every slice row a templated rule makes carries the TTL attribute, in every region", async () => {
    const [us, eu] = system.regions;
    expect(us?.limiter).toBeDefined();
    for (let i = 0; i < 30; i++) expect((await rate(us?.url as string, { "x-api-key": `key-${i}` })).status).toBe(200);
    for (let i = 25; i < 40; i++) expect((await rate(eu?.url as string, { "x-api-key": `key-${i}` })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1500)); // replication, merges, the other regions' rows
    const nowS = Date.now() / 1000;
    for (const region of REGIONS) {
      const client = makeDynamoClient({ region, endpoint: inject("dynamoEndpoint"), requestTimeoutMs: 10_000 });
      const out = await client.send(new ScanCommand({ TableName: table, ConsistentRead: true }));
      client.destroy();
      const slices = (out.Items ?? []).filter((i) => i.sk?.S?.startsWith("slice#"));
      expect(slices.length).toBeGreaterThanOrEqual(40);
      for (const item of slices) {
        const exp = Number(item.exp?.N);
        expect(exp, `${region}: ${item.pk?.S} ${item.sk?.S} has no TTL attribute`).toBeGreaterThan(nowS);
        // ttl after the slice could be full again (capacity 5 at 1/s: 5 s), never more than a little over.
        expect(exp).toBeLessThanOrEqual(nowS + 5 + DEFAULT_RULE_TTL_SECONDS + 5);
      }
    }
  });

  it("a rule's cap on live buckets: past maxBuckets a new header value is a 429 rule.bucket_cap_reached and makes no row; known keys still decide", async () => {
    const [us] = system.regions;
    const statuses: number[] = [];
    const codes = new Set<string>();
    for (let i = 0; i < 80; i++) {
      const res = await rate(us?.url as string, { "x-user-id": `u-${i}` });
      statuses.push(res.status);
      if (res.status === 429) codes.add(((await res.json()) as { error?: { code: string } }).error?.code ?? "none");
      else await res.arrayBuffer();
    }
    expect(statuses.filter((x) => x === 200).length).toBe(50);
    expect(statuses.filter((x) => x === 429).length).toBe(30);
    expect([...codes]).toEqual(["rule.bucket_cap_reached"]);
    expect((await rate(us?.url as string, { "x-user-id": "u-7" })).status).toBe(200); // an existing bucket is not affected
    const client = makeDynamoClient({ region: "us-east-1", endpoint: inject("dynamoEndpoint"), requestTimeoutMs: 5000 });
    const items = await client.send(new ScanCommand({ TableName: table, ConsistentRead: true }));
    const rows = (items.Items ?? []).filter((i) => i.pk?.S?.startsWith("user-") && i.sk?.S === "slice#us-east-1");
    expect(rows.length).toBe(50);
    client.destroy();
  });

  it('refuses keys that start with "#" and answers 413 to a body over 64 KiB, changing nothing', async () => {
    const [us] = system.regions;
    const hash = await rate(us?.url as string, {}, JSON.stringify({ key: "#heartbeat" }));
    expect(hash.status).toBe(400);
    expect(((await hash.json()) as { error: { code: string } }).error.code).toBe("request.invalid_key");
    const big = await rate(us?.url as string, {}, JSON.stringify({ key: "x".repeat(70_000) }));
    expect(big.status).toBe(413);
    expect(((await big.json()) as { error: { code: string } }).error.code).toBe("request.too_large");
  });
});
