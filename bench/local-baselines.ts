/**
 * The three alternative strategies of the accuracy comparison as real clients of a region's own
 * DynamoDB table, for the local multi-region system (the table is replicated between regions by
 * the same Global Tables emulator, at the same lag, as tokenbank's):
 * - (a) `lwwTake`: one shared bucket item, read-then-conditional-write on the region's replica,
 *   replicated last-writer-wins on (write time, region) as Global Tables does;
 * - (b) `staticTake`: the same textbook bucket per region, holding a 1/R share of capacity and rate;
 * - (c) `gcounter`: a bucket per region refilling at the full rate, debited by its own takes and
 *   by every peer's consumption counter (a G-counter) as soon as the counter replicates (`fold`,
 *   which the caller runs on the region's stream, as a stream consumer would in AWS).
 * Each take is what one decision costs; a lost optimistic race re-reads and retries.
 */
import {
  type AttributeValue,
  ConditionalCheckFailedException,
  type DynamoDBClient,
  GetItemCommand,
  QueryCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import { CONFIG_SK } from "../lambda/adapters/dynamodb/items.js";

/** One decision: true when admitted. */
export type Take = () => Promise<boolean>;

const MAX_ATTEMPTS = 20;
const n = (v: AttributeValue | undefined, fallback: number) => (v?.N === undefined ? fallback : Number(v.N));

async function optimistic(attempt: () => Promise<boolean | "retry">): Promise<boolean> {
  for (let i = 0; i < MAX_ATTEMPTS; i++) {
    try {
      const out = await attempt();
      if (out !== "retry") return out;
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
    // Lost a race with another writer: back off (full jitter), as any sane client would.
    await new Promise((r) => setTimeout(r, Math.random() * Math.min(200, 5 * 2 ** i)));
  }
  throw new Error("too much contention");
}

/**
 * A textbook bucket item: read it, refill, write it back conditioned on the version read.
 * `replicated` makes the item last-writer-wins across regions: the emulator applies a replicated
 * image only if its (`at`, `org`) is newer, as it does for tokenbank's configs.
 */
function textbookTake(opts: {
  client: DynamoDBClient;
  tableName: string;
  pk: string;
  region: string;
  capacity: number;
  ratePerS: number;
  replicated: boolean;
}): Take {
  const Key = { pk: { S: opts.pk }, sk: { S: opts.replicated ? CONFIG_SK : "bucket" } };
  return () =>
    optimistic(async () => {
      const now = Date.now();
      const got = await opts.client.send(new GetItemCommand({ TableName: opts.tableName, Key, ConsistentRead: true }));
      const level = Math.min(
        opts.capacity,
        n(got.Item?.tokens, opts.capacity) + (Math.max(0, now - n(got.Item?.ts, now)) / 1000) * opts.ratePerS,
      );
      if (level < 1) return false;
      await opts.client.send(
        new UpdateItemCommand({
          TableName: opts.tableName,
          Key,
          // `_rep` marks a replicated image; a local write clears it so the emulator ships this one.
          UpdateExpression: "SET tokens = :t, ts = :now, #at = :now, org = :org, v = :v REMOVE #rep",
          ConditionExpression: got.Item ? "v = :old" : "attribute_not_exists(pk)",
          ExpressionAttributeNames: { "#at": "at", "#rep": "_rep" },
          ExpressionAttributeValues: {
            ":t": { N: String(level - 1) },
            ":now": { N: String(now) },
            ":org": { S: opts.region },
            ":v": { S: `${opts.region}:${now}:${Math.random()}` },
            ...(got.Item ? { ":old": got.Item.v as AttributeValue } : {}),
          },
        }),
      );
      return true;
    });
}

/** (a) One shared item per bucket, replicated last-writer-wins. */
export function lwwTake(client: DynamoDBClient, tableName: string, key: string, region: string, capacity: number, ratePerS: number): Take {
  return textbookTake({ client, tableName, pk: `lww#${key}`, region, capacity, ratePerS, replicated: true });
}

/** (b) A per-region bucket with a static 1/`regions` share of the limit. */
export function staticTake(
  client: DynamoDBClient,
  tableName: string,
  key: string,
  region: string,
  capacity: number,
  ratePerS: number,
  regions: number,
): Take {
  return textbookTake({
    client,
    tableName,
    pk: `static#${key}#${region}`,
    region,
    capacity: capacity / regions,
    ratePerS: ratePerS / regions,
    replicated: false,
  });
}

/**
 * (c) A G-counter: each region's row holds its own bucket (full capacity and rate), its
 * consumption counter `n`, and how much of each peer's counter it has already debited (`seen`).
 * One query reads the region's row and its replicas of the peers' rows. `take` decides a request;
 * `fold` debits newly replicated peer consumption without taking (run it when a peer's row
 * arrives, so that an idle region's bucket keeps refilling and paying in time order).
 */
export function gcounter(
  client: DynamoDBClient,
  tableName: string,
  key: string,
  region: string,
  capacity: number,
  ratePerS: number,
): { take: Take; fold: () => Promise<void> } {
  const pk = `gc#${key}`;
  const step = (takeOne: boolean) =>
    optimistic(async () => {
      const now = Date.now();
      const rows = await client.send(
        new QueryCommand({
          TableName: tableName,
          KeyConditionExpression: "pk = :pk",
          ExpressionAttributeValues: { ":pk": { S: pk } },
          ConsistentRead: true,
        }),
      );
      const own = rows.Items?.find((i) => i.sk?.S === region);
      const seen: Record<string, number> = {};
      for (const [peer, v] of Object.entries(own?.seen?.M ?? {})) seen[peer] = n(v, 0);
      let level = Math.min(capacity, n(own?.level, capacity) + (Math.max(0, now - n(own?.ts, now)) / 1000) * ratePerS);
      for (const row of rows.Items ?? []) {
        const peer = row.sk?.S as string;
        if (peer === region) continue;
        const counter = n(row.n, 0);
        level -= Math.max(0, counter - (seen[peer] ?? 0));
        seen[peer] = Math.max(counter, seen[peer] ?? 0);
      }
      if (takeOne && level < 1) return false;
      await client.send(
        new UpdateItemCommand({
          TableName: tableName,
          Key: { pk: { S: pk }, sk: { S: region } },
          UpdateExpression: "SET #lvl = :lvl, ts = :now, seen = :seen, v = :v ADD n :one",
          ConditionExpression: own ? "v = :old" : "attribute_not_exists(pk)",
          ExpressionAttributeNames: { "#lvl": "level" },
          ExpressionAttributeValues: {
            ":lvl": { N: String(takeOne ? level - 1 : level) },
            ":now": { N: String(now) },
            ":seen": { M: Object.fromEntries(Object.entries(seen).map(([p, c]) => [p, { N: String(c) }])) },
            ":one": { N: takeOne ? "1" : "0" },
            ":v": { S: `${now}:${Math.random()}` },
            ...(own ? { ":old": own.v as AttributeValue } : {}),
          },
        }),
      );
      return true;
    });
  return { take: () => step(true), fold: async () => void (await step(false)) };
}
