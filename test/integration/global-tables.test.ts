/** The Global Tables emulator on its own: it replicates, and once stopped it stays stopped. */
import { GetItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { describe, expect, it } from "vitest";
import { makeDynamoClient } from "../../lambda/adapters/dynamodb/store.js";
import { GlobalTablesEmulator } from "../../local/global-tables.js";
import { StreamTailer } from "../../local/stream-tailer.js";
import { ensureTable } from "../../local/table.js";
import { freshStore } from "../helpers/dynamo.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("GlobalTablesEmulator", () => {
  it("replicates writes, and delivers nothing after stop() even when stopped mid-delivery", async () => {
    const east = await freshStore("us-east-1", "gt");
    const tableName = east.tableName;
    // The same table in a second region (DynamoDB Local keeps regions apart).
    const west = { client: makeDynamoClient({ region: "eu-central-1", endpoint: east.endpoint, requestTimeoutMs: 5000 }) };
    await ensureTable(west.client, tableName);
    const clients = new Map([
      ["us-east-1", east.client],
      ["eu-central-1", west.client],
    ]);
    const tailers = [...clients.keys()].map((region) => new StreamTailer({ endpoint: east.endpoint, region, tableName, pollMs: 5 }));
    const gt = new GlobalTablesEmulator({ tableName, clients, tailers, lagMs: 0, jitter: 0 });
    for (const t of tailers) await t.start();
    gt.start();
    const put = (i: number) =>
      east.client.send(
        new PutItemCommand({ TableName: tableName, Item: { pk: { S: `k${i % 20}` }, sk: { S: "s" }, n: { N: String(i) } } }),
      );
    try {
      await put(0);
      let replicated = false;
      for (let i = 0; i < 100 && !replicated; i++) {
        await sleep(50);
        const got = await west.client.send(new GetItemCommand({ TableName: tableName, Key: { pk: { S: "k0" }, sk: { S: "s" } } }));
        replicated = got.Item?.n?.N === "0";
      }
      expect(replicated).toBe(true);

      // Keep writing so that deliveries are in flight, then stop in the middle of them.
      let writing = true;
      let i = 1;
      const writer = (async () => {
        while (writing) await put(i++);
      })();
      await sleep(1500);
      await gt.stop();
      const applied = gt.stats().reduce((sum, l) => sum + l.applied, 0);
      await sleep(1000);
      writing = false;
      await writer;
      expect(applied).toBeGreaterThan(1);
      expect(gt.stats().reduce((sum, l) => sum + l.applied, 0)).toBe(applied);
    } finally {
      await gt.stop();
      for (const t of tailers) await t.stop();
    }
  }, 60_000);
});
