/**
 * The alternatives a user would pick, behind equivalent minimal HTTP handlers on the same
 * DynamoDB Local, with every DynamoDB call counted:
 * - rate-limiter-flexible's own DynamoDB store (`RateLimiterDynamo`, a fixed window);
 * - a textbook token bucket: read the item, compute the refill, write it back conditioned on
 *   the version read (retry on conflict);
 * - the floor of this design: a minimal single-write GCRA bucket (one conditional `UpdateItem`
 *   per decision, a second only when the bucket was full), on a table with a stream as a
 *   global table has.
 */
import { createServer, type Server } from "node:http";
import { ConditionalCheckFailedException, CreateTableCommand, DynamoDB, GetItemCommand, UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import { RateLimiterDynamo, RateLimiterRes } from "rate-limiter-flexible";
import { localCredentials } from "../lambda/adapters/dynamodb/store.js";

/** A running competitor. */
export interface Competitor {
  readonly name: string;
  readonly url: string;
  calls(): number;
  /** Decisions answered (counted by the server, so requests in flight at the end count too). */
  decisions(): number;
  close(): Promise<void>;
}

function counted(client: DynamoDB): { client: DynamoDB; calls: () => number } {
  let n = 0;
  client.middlewareStack.add(
    (next) => async (args) => {
      n++;
      return next(args);
    },
    { step: "initialize", name: "countCalls" },
  );
  return { client, calls: () => n };
}

function serve(decide: (key: string) => Promise<boolean>): Promise<{ server: Server; url: string; decisions: () => number }> {
  let decisions = 0;
  const server = createServer(async (req, res) => {
    let body = "";
    for await (const chunk of req) body += chunk;
    try {
      const { key } = JSON.parse(body || "{}") as { key?: string };
      const ok = await decide(key ?? "default");
      decisions++;
      res.writeHead(ok ? 200 : 429, { "content-type": "application/json" });
      res.end(JSON.stringify({ allowed: ok }));
    } catch {
      res.writeHead(503);
      res.end();
    }
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve({ server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, decisions: () => decisions }),
    ),
  );
}

const close = (server: Server) =>
  new Promise<void>((r) => {
    server.close(() => r());
    server.closeAllConnections();
  });

/** A client of DynamoDB Local and a fresh single-key table on it (`stream`: with new and old images). */
async function freshTable(
  endpoint: string,
  prefix: string,
  keyName: string,
  stream = false,
): Promise<{ raw: DynamoDB; tableName: string }> {
  const tableName = `${prefix}${Date.now()}`;
  // Its own DynamoDB Local namespace: its stream records never share an engine table with another system's.
  const raw = new DynamoDB({ region: "us-east-1", endpoint, credentials: localCredentials(tableName) });
  await raw.send(
    new CreateTableCommand({
      TableName: tableName,
      BillingMode: "PAY_PER_REQUEST",
      AttributeDefinitions: [{ AttributeName: keyName, AttributeType: "S" }],
      KeySchema: [{ AttributeName: keyName, KeyType: "HASH" }],
      ...(stream ? { StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_AND_OLD_IMAGES" as const } } : {}),
    }),
  );
  return { raw, tableName };
}

/** rate-limiter-flexible's RateLimiterDynamo with `points` per `duration` seconds. */
export async function startRateLimiterFlexible(endpoint: string, points: number, duration: number): Promise<Competitor> {
  const { raw, tableName } = await freshTable(endpoint, "rlf", "key");
  const { client, calls } = counted(raw);
  const limiter = new RateLimiterDynamo({ storeClient: client, tableName, tableCreated: true, ttlSet: true, points, duration });
  const { server, url, decisions } = await serve(async (key) => {
    try {
      await limiter.consume(key, 1);
      return true;
    } catch (error) {
      if (error instanceof RateLimiterRes) return false;
      throw error;
    }
  });
  return { name: "rate-limiter-flexible (RateLimiterDynamo)", url, calls, decisions, close: () => close(server) };
}

/**
 * The physical floor of tokenbank's hot path: one conditional increment of a theoretical
 * arrival time per decision (`tat += inc` if `tat BETWEEN now AND now + cap − inc`), the
 * absolute form only when the bucket is full, no cache, no version, no counters. Its table has
 * a stream with new and old images, like a global table's.
 */
export async function startFloorBucket(endpoint: string, capacity: number, refillPerSecond: number): Promise<Competitor> {
  const { raw, tableName } = await freshTable(endpoint, "floor", "pk", true);
  const { client, calls } = counted(raw);
  // Integer microseconds: one token every `inc` µs, the bucket full at `tat <= now`.
  const inc = BigInt(Math.ceil(1_000_000 / refillPerSecond));
  const span = BigInt(capacity) * inc;
  const { server, url, decisions } = await serve(async (key) => {
    const now = BigInt(Date.now()) * 1000n;
    const Key = { pk: { S: key } };
    try {
      await client.send(
        new UpdateItemCommand({
          TableName: tableName,
          Key,
          UpdateExpression: "SET tat = tat + :inc",
          ConditionExpression: "tat BETWEEN :now AND :limit",
          ExpressionAttributeValues: { ":inc": { N: `${inc}` }, ":now": { N: `${now}` }, ":limit": { N: `${now + span - inc}` } },
          ReturnValuesOnConditionCheckFailure: "ALL_OLD",
        }),
      );
      return true;
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      const tat = error.Item?.tat?.N === undefined ? undefined : BigInt(error.Item.tat.N);
      if (tat !== undefined && tat >= now) return false; // a true denial
      try {
        await client.send(
          new UpdateItemCommand({
            TableName: tableName,
            Key,
            UpdateExpression: "SET tat = :tat",
            ConditionExpression: "attribute_not_exists(tat) OR tat < :now",
            ExpressionAttributeValues: { ":tat": { N: `${now + inc}` }, ":now": { N: `${now}` } },
          }),
        );
        return true;
      } catch (again) {
        if (!(again instanceof ConditionalCheckFailedException)) throw again;
        return false;
      }
    }
  });
  return { name: "single-write floor (stream on)", url, calls, decisions, close: () => close(server) };
}

/** The textbook read-then-conditional-write token bucket. */
export async function startTextbookBucket(endpoint: string, capacity: number, refillPerSecond: number): Promise<Competitor> {
  const { raw, tableName } = await freshTable(endpoint, "textbook", "pk");
  const { client, calls } = counted(raw);
  const { server, url, decisions } = await serve(async (key) => {
    for (let attempt = 0; attempt < 20; attempt++) {
      const now = Date.now();
      const got = await client.send(new GetItemCommand({ TableName: tableName, Key: { pk: { S: key } }, ConsistentRead: true }));
      const tokens = got.Item ? Number(got.Item.tokens?.N) : capacity;
      const ts = got.Item ? Number(got.Item.ts?.N) : now;
      const level = Math.min(capacity, tokens + ((now - ts) / 1000) * refillPerSecond);
      if (level < 1) return false;
      try {
        await client.send(
          new UpdateItemCommand({
            TableName: tableName,
            Key: { pk: { S: key } },
            UpdateExpression: "SET tokens = :t, ts = :now",
            ConditionExpression: got.Item ? "ts = :old" : "attribute_not_exists(pk)",
            ExpressionAttributeValues: {
              ":t": { N: String(level - 1) },
              ":now": { N: String(now) },
              ...(got.Item ? { ":old": { N: String(ts) } } : {}),
            },
          }),
        );
        return true;
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
      }
    }
    throw new Error("too much contention");
  });
  return { name: "textbook read-then-write bucket", url, calls, decisions, close: () => close(server) };
}
