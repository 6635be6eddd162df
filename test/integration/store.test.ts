/** The DynamoDB store under contention and faults. */
import { type AddressInfo, createServer, type Socket } from "node:net";
import { DynamoDBClient, GetItemCommand, UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import { mockClient } from "aws-sdk-client-mock";
import { describe, expect, it } from "vitest";
import { DynamoBucketStore, makeDynamoClient } from "../../lambda/adapters/dynamodb/store.js";
import { rulesFromYaml } from "../../lambda/adapters/rules-file.js";
import { systemClock } from "../../lambda/adapters/system-clock.js";
import { BucketAdmin } from "../../lambda/app/buckets.js";
import { Limiter } from "../../lambda/app/limiter.js";
import { makeSlice } from "../../lambda/app/new-row.js";
import { StoreUnavailableError } from "../../lambda/core/errors.js";
import { TOKEN } from "../../lambda/core/units.js";
import { freePort } from "../../local/dynamodb-local.js";
import { recountKeepsClaims } from "../helpers/bucket-cap.js";
import { freshStore } from "../helpers/dynamo.js";
import { startRegion } from "../helpers/server.js";

const limits = (capacity: number, refillRate: number) => ({ capacity, refillRate, onError: "deny" as const });

describe("DynamoBucketStore under contention", () => {
  it("64 instances, each with its own cache, never over-admit: capacity 200 → exactly 200", async () => {
    const { store } = await freshStore();
    await new BucketAdmin({ store, clock: systemClock }).put("hot", limits(200, 0), "test");
    const instances = Array.from({ length: 64 }, () => new Limiter({ store, clock: systemClock, rules: [], denyCacheMs: 0 }));
    let unknown = 0; // 503s: a timed-out write may or may not have been applied (never retried, never double-charged)
    const results = await Promise.all(
      instances.map(async (limiter) => {
        let allowed = 0;
        for (;;) {
          try {
            const d = await limiter.rate({ key: "hot", tokens: 1, headers: {} });
            if (!d.allowed) return allowed;
            allowed++;
          } catch (error) {
            if (!(error instanceof StoreUnavailableError)) throw error;
            unknown++;
          }
        }
      }),
    );
    const allowed = results.reduce((a, b) => a + b, 0);
    // The bucket is drained exactly; nothing was admitted beyond it; with no infrastructure fault, exactly 200.
    expect((await store.getSlice("hot"))?.consumed).toBe(200n * TOKEN);
    expect(allowed).toBeLessThanOrEqual(200);
    expect(allowed + unknown).toBeGreaterThanOrEqual(200);
    if (unknown === 0) expect(allowed).toBe(200);
  });

  it("rewrites land under a hot key and lose no token", async () => {
    const { store } = await freshStore();
    const admin = new BucketAdmin({ store, clock: systemClock });
    await admin.put("busy", limits(1_000_000, 0), "test");
    // Every decision a write of its own (no leases), so the slice's consumed counter is exactly the takes allowed:
    // a lease's leftover is lost when a rewrite re-bases the row before its refund (docs/architecture.md, Leases).
    const takers = Array.from({ length: 32 }, () => new Limiter({ store, clock: systemClock, rules: [], denyCacheMs: 0, leaseMs: 0 }));
    let stop = false;
    let allowed = 0;
    const load = Promise.all(
      takers.map(async (limiter) => {
        while (!stop) if ((await limiter.rate({ key: "busy", tokens: 1, headers: {} })).allowed) allowed++;
      }),
    );
    // Each PATCH changes the limits, so each must rewrite the slice while takes keep flowing.
    let rewrites = 0;
    for (let i = 0; i < 10; i++) {
      await admin.patch("busy", { refillRate: i + 1 }, "test");
      rewrites++;
    }
    stop = true;
    await load;
    const slice = await store.getSlice("busy");
    expect(rewrites).toBe(10);
    expect(slice?.limits.refillRate).toBe(10);
    expect(allowed).toBeGreaterThan(0);
    expect(slice?.consumed).toBe(BigInt(allowed) * TOKEN);
  });

  it("takes from several buckets in one transaction, all or nothing", async () => {
    const { store } = await freshStore();
    const rules = rulesFromYaml(
      `rules:\n  - key: "agent-{{ .Request.Header.X-A }}"\n    capacity: 2\n    refillRate: 0\n  - key: "tenant-{{ .Request.Header.X-T }}"\n    capacity: 5\n    refillRate: 0\n`,
      "t",
    );
    const limiter = new Limiter({ store, clock: systemClock, rules, denyCacheMs: 0 });
    const outcomes = [];
    for (let i = 0; i < 3; i++) outcomes.push((await limiter.rate({ tokens: 1, headers: { "x-a": "a", "x-t": "t" } })).allowed);
    expect(outcomes).toEqual([true, true, false]);
    expect((await store.getSlice("tenant-t"))?.consumed).toBe(2n * TOKEN);
    expect(store.stats().take).toBe(3);
  });
});

describe("the per-rule cap's counter", () => {
  it("a recount keeps the claims made while the pass ran (DynamoDB Local)", async () => {
    const { store } = await freshStore();
    await recountKeepsClaims(store);
  });
});

describe("faults", () => {
  it("an unreachable store is a 503 store.unavailable; an onError: allow bucket fails open", async () => {
    const port = await freePort(); // nothing listens there
    const store = new DynamoBucketStore({
      client: makeDynamoClient({ region: "us-east-1", endpoint: `http://127.0.0.1:${port}` }),
      tableName: "none",
      region: "us-east-1",
    });
    const rules = rulesFromYaml(
      `rules:\n  - name: open\n    key: "open-{{ .Request.Header.X-A }}"\n    capacity: 1\n    refillRate: 1\n    onError: allow\n  - name: closed\n    key: "closed-{{ .Request.Header.X-B }}"\n    capacity: 1\n    refillRate: 1\n`,
      "t",
    );
    const region = await startRegion({ store, rules });
    try {
      const closed = await region.call("POST", "/rate", {}, { "x-b": "1" });
      expect(closed.status).toBe(503);
      expect(closed.body.error.code).toBe("store.unavailable");
      const open = await region.call("POST", "/rate", {}, { "x-a": "1" });
      expect(open.status).toBe(200);
      expect(open.body).toMatchObject({ allowed: true, failOpen: true });
    } finally {
      await region.close();
    }
  });

  it("a hung engine: every call times out at the configured budget (never only a warning), reads say so, writes say the outcome is unknown, and /rate answers 503 or fails open in time", async () => {
    // Accepts connections and never answers: what a paused or wedged engine looks like.
    const sockets: Socket[] = [];
    const hung = createServer((s) => sockets.push(s));
    await new Promise<void>((r) => hung.listen(0, "127.0.0.1", () => r()));
    const endpoint = `http://127.0.0.1:${(hung.address() as AddressInfo).port}`;
    try {
      const store = new DynamoBucketStore({
        client: makeDynamoClient({ region: "us-east-1", endpoint, requestTimeoutMs: 300 }),
        tableName: "t",
        region: "us-east-1",
      });
      const timed = async (run: () => Promise<unknown>) => {
        const started = performance.now();
        const error = await run().then(
          () => undefined,
          (e: unknown) => e,
        );
        return { error, ms: performance.now() - started };
      };
      const read = await timed(() => store.getSlice("k"));
      expect(read.error).toMatchObject({ code: "store.timeout" });
      expect(read.ms).toBeLessThan(1000); // one timeout, not one per retry
      const plan = { kind: "increment" as const, amount: TOKEN, low: 0n, high: TOKEN, version: 1 };
      const base = makeSlice("k", { self: "us-east-1", regions: ["us-east-1"] }, limits(1, 0), { kind: "override", version: 1 }, 0n);
      const write = await timed(() => store.take([{ key: "k", plan, base, nowUs: 0n }]));
      expect(write.error).toMatchObject({ code: "store.outcome_unknown" });
      expect(write.ms).toBeLessThan(1000);
      expect(store.stats().take).toBe(1); // a write that may have applied is never sent again

      const rules = rulesFromYaml(
        `rules:\n  - name: open\n    key: "open-{{ .Request.Header.X-A }}"\n    capacity: 1\n    refillRate: 1\n    onError: allow\n  - name: closed\n    key: "closed-{{ .Request.Header.X-B }}"\n    capacity: 1\n    refillRate: 1\n`,
        "t",
      );
      const region = await startRegion({ store, rules });
      try {
        const started = performance.now();
        const [closed, open, openKeyed] = await Promise.all([
          region.call("POST", "/rate", {}, { "x-b": "1" }),
          region.call("POST", "/rate", {}, { "x-a": "1" }),
          // With an Idempotency-Key the first call is the replay read: its failure fails open too.
          region.call("POST", "/rate", {}, { "x-a": "1", "idempotency-key": "req-1" }),
        ]);
        expect(performance.now() - started).toBeLessThan(1500);
        expect(closed.status).toBe(503);
        expect(closed.body.error.code).toBe("store.timeout");
        expect(open.status).toBe(200);
        expect(open.body).toMatchObject({ allowed: true, failOpen: true });
        expect(openKeyed.status).toBe(200);
        expect(openKeyed.body).toMatchObject({ allowed: true, failOpen: true });
      } finally {
        await region.close();
      }
    } finally {
      for (const s of sockets) s.destroy();
      hung.close();
    }
  });

  it("retries a connection that was never made only within the call's budget (a paused engine refuses them for as long as it lasts)", async () => {
    const client = new DynamoDBClient({ region: "us-east-1" });
    const mock = mockClient(client);
    // What the client's connection timeout throws: nothing was sent, so a retry is safe, but each costs 400 ms here.
    const refused = () =>
      new Promise<never>((_, reject) =>
        setTimeout(
          () =>
            reject(Object.assign(new Error("the request socket did not establish a connection within 400 ms"), { name: "TimeoutError" })),
          400,
        ),
      );
    mock.on(GetItemCommand).callsFake(refused);
    const store = new DynamoBucketStore({ client, tableName: "t", region: "us-east-1", callBudgetMs: 1000 });
    const started = performance.now();
    await expect(store.getSlice("k")).rejects.toBeInstanceOf(StoreUnavailableError);
    const ms = performance.now() - started;
    // Three attempts of 400 ms would take 1.2 s: the budget cuts the third, so the call ends at 1 s.
    expect(ms).toBeLessThan(1150);
    expect(ms).toBeGreaterThanOrEqual(790);
    expect(mock.commandCalls(GetItemCommand).length).toBeLessThanOrEqual(3);
    mock.restore();
  });

  it("retries a throttled write (never applied) and then answers; a timed-out write is not retried", async () => {
    const client = new DynamoDBClient({ region: "us-east-1" });
    const mock = mockClient(client);
    const store = new DynamoBucketStore({ client, tableName: "t", region: "us-east-1" });
    const throttled = Object.assign(new Error("slow down"), { name: "ProvisionedThroughputExceededException", $fault: "client" });
    const timeout = Object.assign(new Error("socket timed out"), { name: "TimeoutError" });
    const item = {
      pk: { S: "k" },
      sk: { S: "slice#us-east-1" },
      reg: { S: "us-east-1" },
      cap: { N: "10" },
      rate: { N: "0" },
      cs: { N: "1000000" },
      rs: { N: "1000000" },
      e: { N: "0" },
      x: { N: "0" },
      v: { N: "1" },
      used: { N: "0" },
      oe: { S: "deny" },
      src: { S: "override:1" },
    };
    mock.on(GetItemCommand).resolves({ Item: item });
    mock
      .on(UpdateItemCommand)
      .rejectsOnce(throttled)
      .rejectsOnce(throttled)
      .resolves({ Attributes: { ...item, x: { N: String(TOKEN) } } });
    const limiter = new Limiter({ store, clock: systemClock, rules: [] });
    const ok = await limiter.rate({ key: "k", tokens: 1, headers: {} });
    expect(ok.allowed).toBe(true);
    expect(mock.commandCalls(UpdateItemCommand)).toHaveLength(3);

    mock.reset();
    mock.on(GetItemCommand).resolves({ Item: item });
    mock.on(UpdateItemCommand).rejects(timeout);
    await expect(new Limiter({ store, clock: systemClock, rules: [] }).rate({ key: "k", tokens: 1, headers: {} })).rejects.toMatchObject({
      code: "store.outcome_unknown", // it may have been applied: never "nothing was charged"
    });
    expect(mock.commandCalls(UpdateItemCommand)).toHaveLength(1); // may have been applied: never sent twice

    mock.reset();
    mock.on(GetItemCommand).resolves({ Item: item });
    mock.on(UpdateItemCommand).rejects(throttled);
    await expect(new Limiter({ store, clock: systemClock, rules: [] }).rate({ key: "k", tokens: 1, headers: {} })).rejects.toMatchObject({
      code: "store.throttled",
    });
    mock.restore();
  });
});
