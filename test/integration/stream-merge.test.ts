/**
 * The stream-merge handler against DynamoDB Local: Lambda-shaped events, duplicates, late and
 * out-of-order records, partial-batch failure reporting.
 */
import { PutItemCommand } from "@aws-sdk/client-dynamodb";
import type { DynamoDBRecord, DynamoDBStreamEvent } from "aws-lambda";
import { describe, expect, it } from "vitest";
import { type Item, sliceToItem } from "../../lambda/adapters/dynamodb/items.js";
import { systemClock } from "../../lambda/adapters/system-clock.js";
import { BucketAdmin } from "../../lambda/app/buckets.js";
import { Merger } from "../../lambda/app/merger.js";
import { makeSlice } from "../../lambda/app/new-row.js";
import type { Topology } from "../../lambda/app/topology.js";
import { StoreUnavailableError } from "../../lambda/core/errors.js";
import { give } from "../../lambda/core/escrow.js";
import { makeStreamMergeHandler } from "../../lambda/handlers/stream-merge.js";
import type { StoredSlice } from "../../lambda/ports/bucket-store.js";
import { freshStore } from "../helpers/dynamo.js";

const topology: Topology = { self: "us-east-1", regions: ["us-east-1", "eu-central-1"] };
const limits = { capacity: 100, refillRate: 0, onError: "deny" as const };
let seq = 0;

/** A stream record carrying `row` as its new image, as Lambda delivers it. */
function record(row: StoredSlice): DynamoDBRecord {
  seq++;
  const image = sliceToItem(row);
  return {
    eventID: String(seq),
    eventName: "MODIFY",
    eventSource: "aws:dynamodb",
    awsRegion: "us-east-1",
    dynamodb: {
      Keys: { pk: image.pk, sk: image.sk } as never,
      NewImage: image as never,
      SequenceNumber: String(seq).padStart(21, "0"),
      StreamViewType: "NEW_AND_OLD_IMAGES",
    },
  };
}

async function setup() {
  const { store, client, tableName } = await freshStore();
  await new BucketAdmin({ store, clock: systemClock, topology }).put("k", limits, "test");
  // The peer's row, as replication would write it into our replica.
  let peer = makeSlice("k", { ...topology, self: "eu-central-1" }, limits, { kind: "override", version: 1 }, systemClock.nowUs());
  const replicate = async (row: StoredSlice) => client.send(new PutItemCommand({ TableName: tableName, Item: sliceToItem(row) as Item }));
  await replicate(peer);
  const merger = new Merger({ store, clock: systemClock, topology, rebalance: false });
  const handler = makeStreamMergeHandler({ merger, region: "us-east-1" });
  const invoke = (records: DynamoDBRecord[]) => handler({ Records: records } satisfies DynamoDBStreamEvent, {} as never);
  const giveMore = async (ppm: bigint) => {
    peer = give(peer, "us-east-1", ppm, ppm, systemClock.nowUs());
    await replicate(peer);
    return peer;
  };
  return { store, merger, invoke, giveMore };
}

describe("stream-merge handler", () => {
  it("merges a peer's give once: duplicates, late and out-of-order records change nothing", async () => {
    const { store, invoke, giveMore } = await setup();
    const v1 = await giveMore(100_000n);
    const v2 = await giveMore(50_000n);
    // Newest first, then the older image, then the newest again: only 150 000 ppm arrive.
    expect(await invoke([record(v2)])).toEqual({ batchItemFailures: [] });
    await invoke([record(v1), record(v2), record(v1)]);
    const own = (await store.getSlice("k")) as StoredSlice;
    expect(own.capShare).toBe(650_000n);
    expect(own.takes["eu-central-1"]?.cap).toBe(150_000n);
    expect(own.mark).toBeGreaterThanOrEqual(0n);
  });

  it("reports the records of a key that failed, and processes the others", async () => {
    const { store, merger, invoke, giveMore } = await setup();
    const row = await giveMore(10_000n);
    const other = { ...row, key: "other" };
    // "other" has no rows at all: its merge creates ours. Make the store fail for it.
    const original = store.querySlices.bind(store);
    store.querySlices = async (key: string) => {
      if (key === "other") throw new StoreUnavailableError("store.unavailable", "injected");
      return original(key);
    };
    const a = record(row);
    const b = record(other);
    const out = await invoke([a, b]);
    expect(out).toEqual({ batchItemFailures: [{ itemIdentifier: b.dynamodb?.SequenceNumber }] });
    expect(merger.stats.merges).toBe(1);
  });

  it("skips the region's own rows", async () => {
    const { store, merger, invoke } = await setup();
    const own = (await store.getSlice("k")) as StoredSlice;
    expect(await invoke([record(own)])).toEqual({ batchItemFailures: [] });
    expect(merger.stats.rewrites).toBe(0);
  });
});
