/** Per-file tables in the shared DynamoDB Local. */
import { randomUUID } from "node:crypto";
import { inject } from "vitest";
import { DynamoBucketStore, makeDynamoClient } from "../../lambda/adapters/dynamodb/store.js";
import { ensureTable } from "../../local/table.js";

/** A fresh table (unique name) and a store over it. */
export async function freshStore(region = "us-east-1", prefix = "t") {
  const endpoint = inject("dynamoEndpoint");
  const client = makeDynamoClient({ region, endpoint, requestTimeoutMs: 5000 });
  const tableName = `${prefix}-${randomUUID().slice(0, 8)}`;
  await ensureTable(client, tableName);
  return { client, tableName, endpoint, store: new DynamoBucketStore({ client, tableName, region }) };
}
