/**
 * The alternatives a user would pick, behind equivalent minimal HTTP handlers on the same
 * DynamoDB Local, with every DynamoDB call counted:
 * - rate-limiter-flexible's own DynamoDB store (`RateLimiterDynamo`, a fixed window);
 * - a textbook token bucket: read the item, compute the refill, write it back conditioned on
 *   the version read (retry on conflict).
 */
import { createServer, type Server } from "node:http";
import { ConditionalCheckFailedException, CreateTableCommand, DynamoDB, GetItemCommand, UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import { RateLimiterDynamo, RateLimiterRes } from "rate-limiter-flexible";

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

/** rate-limiter-flexible's RateLimiterDynamo with `points` per `duration` seconds. */
export async function startRateLimiterFlexible(endpoint: string, points: number, duration: number): Promise<Competitor> {
  const raw = new DynamoDB({ region: "us-east-1", endpoint, credentials: { accessKeyId: "local", secretAccessKey: "local" } });
  const tableName = `rlf${Date.now()}`;
  await raw.send(
    new CreateTableCommand({
      TableName: tableName,
      BillingMode: "PAY_PER_REQUEST",
      AttributeDefinitions: [{ AttributeName: "key", AttributeType: "S" }],
      KeySchema: [{ AttributeName: "key", KeyType: "HASH" }],
    }),
  );
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

/** The textbook read-then-conditional-write token bucket. */
export async function startTextbookBucket(endpoint: string, capacity: number, refillPerSecond: number): Promise<Competitor> {
  const raw = new DynamoDB({ region: "us-east-1", endpoint, credentials: { accessKeyId: "local", secretAccessKey: "local" } });
  const tableName = `textbook${Date.now()}`;
  await raw.send(
    new CreateTableCommand({
      TableName: tableName,
      BillingMode: "PAY_PER_REQUEST",
      AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
      KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
    }),
  );
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
