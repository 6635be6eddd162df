/** The accuracy benchmark's own parts: the alternatives' DynamoDB clients and the proven-excess metric. */
import { describe, expect, it } from "vitest";
import { provenOverAdmission, scaledTrace } from "../../bench/local-accuracy.js";
import { gcounterTake, lwwTake, staticTake } from "../../bench/local-baselines.js";
import { freshStore } from "../helpers/dynamo.js";

const REGIONS = ["us-east-1", "eu-central-1"];

describe("the alternatives as DynamoDB clients", () => {
  // Both "regions" write one table: replication with no lag, where every strategy must be exact.
  it.each([
    ["(a) shared item", lwwTake, 4],
    ["(c) G-counter", gcounterTake, 4],
  ] as const)("%s admits exactly the capacity across regions with no lag, under concurrency", async (_name, make, expected) => {
    const { client, tableName } = await freshStore();
    const takes = REGIONS.map((r) => make(client, tableName, "k", r, 4, 0));
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => takes[i % 2]?.() ?? Promise.resolve(false)));
    expect(results.filter(Boolean)).toHaveLength(expected);
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
    for (const make of [lwwTake, gcounterTake]) {
      const takes = [
        make(east.client, east.tableName, "k", REGIONS[0] as string, 4, 0),
        make(west.client, west.tableName, "k", REGIONS[1] as string, 4, 0),
      ];
      const results = await Promise.all(Array.from({ length: 12 }, (_, i) => takes[i % 2]?.()));
      expect(results.filter(Boolean)).toHaveLength(8);
    }
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
