/** The accuracy benchmark's own parts: the alternatives' DynamoDB clients and the proven-excess metric. */
import { describe, expect, it } from "vitest";
import { provenOverAdmission, scaledTrace } from "../../bench/local-accuracy.js";
import { gcounter, lwwTake, staticTake } from "../../bench/local-baselines.js";
import { freshStore } from "../helpers/dynamo.js";

const REGIONS = ["us-east-1", "eu-central-1"];

describe("the alternatives as DynamoDB clients", () => {
  // Both "regions" write one table: replication with no lag.
  it("(a) shared item admits exactly the capacity across regions with no lag, even under concurrency", async () => {
    const { client, tableName } = await freshStore();
    const takes = REGIONS.map((r) => lwwTake(client, tableName, "k", r, 4, 0));
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => takes[i % 2]?.() ?? Promise.resolve(false)));
    expect(results.filter(Boolean)).toHaveLength(4);
  });

  it("(c) G-counter admits exactly the capacity across regions with no lag, one request at a time", async () => {
    // (Concurrent takes in two regions each check only their own row: they can both pass.)
    const { client, tableName } = await freshStore();
    const takes = REGIONS.map((r) => gcounter(client, tableName, "k", r, 4, 0).take);
    const results: boolean[] = [];
    for (let i = 0; i < 12; i++) results.push((await takes[i % 2]?.()) ?? false);
    expect(results.filter(Boolean)).toHaveLength(4);
  });

  it("(b) static split gives each region its share and no more", async () => {
    const { client, tableName } = await freshStore();
    const takes = REGIONS.map((r) => staticTake(client, tableName, "k", r, 4, 0, 2));
    const a = await Promise.all(Array.from({ length: 6 }, () => takes[0]?.()));
    const b = await Promise.all(Array.from({ length: 6 }, () => takes[1]?.()));
    expect([a.filter(Boolean).length, b.filter(Boolean).length]).toEqual([2, 2]);
  });

  it("(a) and (c) over-admit when they cannot see each other's writes (separate replicas, no replication)", async () => {
    const east = await freshStore("us-east-1");
    const west = await freshStore("eu-central-1");
    for (const make of [lwwTake, (...args: Parameters<typeof gcounter>) => gcounter(...args).take]) {
      const takes = [
        make(east.client, east.tableName, "k", REGIONS[0] as string, 4, 0),
        make(west.client, west.tableName, "k", REGIONS[1] as string, 4, 0),
      ];
      const results = await Promise.all(Array.from({ length: 12 }, (_, i) => takes[i % 2]?.()));
      expect(results.filter(Boolean)).toHaveLength(8);
    }
  });

  it("(c) G-counter: a region that folds in a peer's consumption as it arrives keeps refilling after it", async () => {
    const { client, tableName } = await freshStore();
    // C = 4, r = 10/s. Both rows share one table, so east's counter is visible to west at once.
    const [east, west, lazy] = [...REGIONS, "ap-south-1"].map((r) => gcounter(client, tableName, "k", r, 4, 10));
    for (let i = 0; i < 4; i++) expect(await east?.take()).toBe(true);
    await west?.fold(); // west pays east's 4 tokens now, from a full bucket
    await new Promise((r) => setTimeout(r, 300)); // ≈ 3 tokens of refill
    const quick = async (g: typeof west) => {
      let n = 0;
      for (let i = 0; i < 5; i++) if (await g?.take()) n++;
      return n;
    };
    const folded = await quick(west);
    expect(folded).toBeGreaterThanOrEqual(2);
    expect(folded).toBeLessThanOrEqual(4);
    // Without the fold, the debits land on a bucket already capped at 4: an idle region pays them late.
    // (`lazy` also sees west's takes by now, so it may admit nothing at all.)
    expect(await quick(lazy)).toBeLessThan(folded);
  });
});

describe("provenOverAdmission", () => {
  it("counts only admissions wholly inside a window from one send to another answer", () => {
    const adm = [
      { sendS: 0, answerS: 1 },
      { sendS: 0.5, answerS: 1.5 },
      { sendS: 1, answerS: 2 },
    ];
    expect(provenOverAdmission(adm, 2, 0)).toBe(1); // all three inside [0, 2]
    expect(provenOverAdmission(adm, 2, 1)).toBeCloseTo(-1); // 3 − 2 − 1·2
    expect(provenOverAdmission(adm, 3, 0)).toBe(0);
    // Three quick requests inside a long one: [0, 10] holds all four, 4 − 2 over C = 2, r = 0.
    expect(provenOverAdmission([{ sendS: 0, answerS: 10 }, ...[1, 2, 3].map((t) => ({ sendS: t, answerS: t + 0.1 }))], 2, 0)).toBe(2);
    expect(provenOverAdmission([], 5, 1)).toBe(-5);
  });
});

describe("scaledTrace", () => {
  it("compresses time and scales capacity and demand with the rate", () => {
    const sc = scaledTrace("follow-the-sun", 30, 10, 1000);
    expect([sc.durationS, sc.refillRate, sc.capacity, sc.lagMs]).toEqual([30, 10, 20, 1000]);
    expect(sc.demand.b).toEqual([
      { fromS: 0, rate: 0 },
      { fromS: 15, rate: 20 },
    ]);
  });
});
