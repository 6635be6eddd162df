/**
 * The IAM map's lower half, against the real engine: every DynamoDB adapter method, called on
 * DynamoDB Local, sends only the actions `STORE_METHOD_ACTIONS` lists for it (a transaction
 * counts as the actions of its items). With `test/unit/app/access.test.ts` (each function's use
 * cases stay within their store methods) this is what makes the synthesized policies sufficient.
 */
import { describe, expect, it } from "vitest";
import { STORE_METHOD_ACTIONS, type StoreMethod } from "../../lambda/adapters/dynamodb/actions.js";
import { makeSlice } from "../../lambda/app/new-row.js";
import { give } from "../../lambda/core/escrow.js";
import { planTake } from "../../lambda/core/slice.js";
import { TOKEN } from "../../lambda/core/units.js";
import { freshStore } from "../helpers/dynamo.js";

const ACTION: Record<string, string> = {
  GetItemCommand: "dynamodb:GetItem",
  PutItemCommand: "dynamodb:PutItem",
  UpdateItemCommand: "dynamodb:UpdateItem",
  DeleteItemCommand: "dynamodb:DeleteItem",
  QueryCommand: "dynamodb:Query",
  ScanCommand: "dynamodb:Scan",
};
const ITEM_ACTION: Record<string, string> = {
  Put: "dynamodb:PutItem",
  Update: "dynamodb:UpdateItem",
  Delete: "dynamodb:DeleteItem",
  ConditionCheck: "dynamodb:ConditionCheckItem",
};

describe("STORE_METHOD_ACTIONS matches what the DynamoDB adapter sends", () => {
  it("every store method, on DynamoDB Local", async () => {
    const { client, store } = await freshStore("us-east-1", "iam");
    let sent = new Set<string>();
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const name = (context as { commandName?: string }).commandName ?? "";
        if (name === "TransactWriteItemsCommand") {
          const items = (args.input as { TransactItems?: Record<string, unknown>[] }).TransactItems ?? [];
          for (const item of items) for (const kind of Object.keys(item)) sent.add(ITEM_ACTION[kind] ?? `unknown ${kind}`);
        } else sent.add(ACTION[name] ?? `unknown ${name}`);
        return next(args);
      },
      { step: "initialize", name: "recordActions" },
    );
    const seen = new Map<StoreMethod, Set<string>>();
    const call = async (method: StoreMethod, run: () => Promise<unknown>) => {
      sent = new Set();
      await run();
      seen.set(method, new Set([...(seen.get(method) ?? []), ...sent]));
    };
    const now = BigInt(Date.now()) * 1000n; // rows carry a TTL: an old instant would let the engine expire them mid-test
    const limits = { capacity: 10, refillRate: 1, onError: "deny" as const, ttl: 60 };
    const topology = { self: "us-east-1", regions: ["us-east-1", "eu-central-1"] };
    const row = makeSlice("k", topology, limits, { kind: "rule", rule: "r" }, now);
    const other = makeSlice("k2", topology, limits, { kind: "rule", rule: "r" }, now);
    await call("createSlice", () => store.createSlice(row));
    await call("createSlice", () => store.createSlice(row)); // exists: the condition fails and returns it
    await store.createSlice(other);
    await call("getSlice", () => store.getSlice("k"));
    const take = (s: typeof row) => ({
      key: s.key,
      plan: planTake(s, TOKEN, now),
      base: s,
      nowUs: now,
      expiresAt: Math.floor(Date.now() / 1000) + 3600,
    });
    await call("take", () => store.take([take(row)]));
    // A lease's leftover goes back: once applied, once refused (the row would pass full).
    const taken = (await store.getSlice("k")) as typeof row;
    await call("refund", () => store.refund("k", { amount: TOKEN / 2n, clock: 0n, version: taken.version }));
    await call("refund", () => store.refund("k", { amount: TOKEN, clock: taken.mark, version: taken.version }));
    const [a, b] = [(await store.getSlice("k")) as typeof row, (await store.getSlice("k2")) as typeof row];
    const record = { id: "rec", fingerprint: "f", decision: "{}", expiresAtMs: Date.now() + 60_000 };
    await call("take", () => store.take([take(a), take(b)], record));
    await call("getIdempotency", () => store.getIdempotency("rec"));
    await call("putIdempotency", () => store.putIdempotency({ ...record, id: "rec2" }));
    const current = (await store.getSlice("k")) as typeof row;
    await call("rewriteSlice", () => store.rewriteSlice("k", (f) => ({ ...f }), now + 1_000_000n));
    const fresh = (await store.getSlice("k")) as typeof row;
    const given = give(fresh, "eu-central-1", 1000n, 1000n, now);
    await call("adjustSlice", async () => {
      const { escrowAdjust } = await import("../../lambda/core/escrow.js");
      const plan = escrowAdjust(fresh, given, now);
      if (plan) await store.adjustSlice("k", plan, given, "merge");
    });
    await call("cancelFreeze", () => store.cancelFreeze("k", current.version));
    await call("querySlices", () => store.querySlices("k"));
    await call("recordDenied", () => store.recordDenied("k", TOKEN, now));
    await call("putHeartbeat", () => store.putHeartbeat(now));
    await call("heartbeats", () => store.heartbeats());
    const config = { key: "k", limits, version: 1, updatedAt: 1, updatedBy: "ops", origin: "us-east-1" };
    await call("putConfig", () => store.putConfig(config, 0));
    await call("putConfig", () => store.putConfig(config, 0)); // a conflict
    await call("getConfig", () => store.getConfig("k"));
    await call("putForecast", () =>
      store.putForecast({ key: "k", region: "eu-central-1", expectedRate: 1, fromMs: 1, untilMs: 2, source: "event" }),
    );
    await call("forecasts", () => store.forecasts("k"));
    const invite = {
      key: "k",
      giver: "us-east-1",
      receiver: "eu-central-1",
      cap: 0n,
      rate: 12_345n,
      base: { cap: 1n, rate: 2n, tokens: 3n },
      heldCap: 500_000n,
      heldRate: 500_000n,
      atUs: now,
    };
    await call("putInvite", () => store.putInvite(invite));
    await call("getInvite", async () => {
      expect(await store.getInvite("k", "eu-central-1")).toEqual(invite); // exact, bigints and all
      expect(await store.getInvite("k", "ap-southeast-2")).toBeUndefined();
    });
    // An invite is neither a slice nor a forecast to the bucket's other readers.
    expect((await store.querySlices("k")).map((r) => r.region)).toEqual(["us-east-1"]);
    expect(await store.forecasts("k")).toHaveLength(1);
    await call("appendHistory", () =>
      store.appendHistory({ key: "k", version: 1, at: 1, by: "ops", region: "us-east-1", inherit: "proportional", old: null, new: limits }),
    );
    await call("history", () => store.history("k"));
    await call("scanAll", () => store.scanAll());
    await call("scanPage", async () => {
      const first = await store.scanPage(undefined, 1);
      await store.scanPage(first.cursor, 1);
    });
    await call("claimBucket", () => store.claimBucket("per-user", 1));
    await call("claimBucket", () => store.claimBucket("per-user", 1)); // the cap: the condition fails
    await call("bucketClaims", () => store.bucketClaims());
    await call("setBucketCounts", () => store.setBucketCounts(new Map([["other", 3]]), new Map()));
    await call("putCheckpoint", () => store.putCheckpoint("forecast", "x"));
    await call("getCheckpoint", () => store.getCheckpoint("forecast"));
    await call("putCheckpoint", () => store.putCheckpoint("forecast", undefined));
    await call("deleteSlice", () => store.deleteSlice("k2"));
    await call("deleteConfig", () => store.deleteConfig("k"));

    const methods = Object.keys(STORE_METHOD_ACTIONS) as StoreMethod[];
    expect(methods.filter((m) => !seen.has(m))).toEqual([]); // every method was exercised
    for (const method of methods) {
      const extra = [...(seen.get(method) ?? [])].filter((action) => !STORE_METHOD_ACTIONS[method].includes(action as never));
      expect({ method, extra }).toEqual({ method, extra: [] });
    }
  });
});
