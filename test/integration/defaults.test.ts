/**
 * The bundled rules file as a newcomer meets it: an explicitly created bucket serves exactly its
 * capacity (no hidden second bucket), and an API key never appears in the clear in an answer's
 * body or headers, nor in the table's keys.
 */
import { ScanCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadRulesFile } from "../../lambda/adapters/rules-file.js";
import { freshStore } from "../helpers/dynamo.js";
import { startRegion } from "../helpers/server.js";

let fresh: Awaited<ReturnType<typeof freshStore>>;
let region: Awaited<ReturnType<typeof startRegion>>;
beforeAll(async () => {
  fresh = await freshStore("us-east-1", "defaults");
  region = await startRegion({ rules: loadRulesFile("buckets.yaml"), store: fresh.store });
});
afterAll(async () => region?.close());

describe("the bundled buckets.yaml", () => {
  it("a bucket created with PUT serves exactly its capacity, and only it is charged", async () => {
    expect((await region.call("PUT", "/buckets/k", { capacity: 37, refillRate: 0 })).status).toBe(201);
    const codes: number[] = [];
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let i = 0; i < 8; i++) codes.push((await region.call("POST", "/rate", { key: "k" })).status);
      }),
    );
    expect(codes.filter((c) => c === 200)).toHaveLength(37);
    expect(codes.filter((c) => c === 429)).toHaveLength(64 - 37);
    const last = await region.call("POST", "/rate", { key: "k", tokens: 0 });
    expect(last.body.buckets.map((b: { key: string }) => b.key)).toEqual(["k"]);
  });

  it("an API key never appears in the clear: not in the body, the headers or the table", async () => {
    const secret = "sk-live-0123456789abcdef";
    const res = await region.call("POST", "/rate", {}, { "x-api-key": secret });
    expect(res.status).toBe(200);
    expect(JSON.stringify(res.body)).not.toContain(secret);
    for (const [name, value] of res.headers) expect(`${name}: ${value}`).not.toContain(secret);
    expect(res.headers.get("ratelimit-policy")).toMatch(/^"per-agent";q=100;w=20$/);
    expect(res.body.buckets[0]).toMatchObject({ rule: "per-agent", key: expect.stringMatching(/^agent-[0-9a-f]{64}$/) });
    const items = await fresh.client.send(new ScanCommand({ TableName: fresh.tableName }));
    expect(JSON.stringify(items.Items)).not.toContain(secret);
  });
});
