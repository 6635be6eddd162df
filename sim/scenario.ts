/**
 * Simulator scenarios: a documented file format (YAML or JSON) and the shipped scenarios.
 *
 * ```yaml
 * name: follow-the-sun
 * durationS: 600              # virtual seconds
 * regions: [a, b]
 * capacity: 100               # tokens
 * refillRate: 50              # tokens/s
 * lagMs: 1000                 # replication lag
 * jitter: 0.2                 # ± fraction of the lag
 * rttMs: 100                  # inter-region call round trip (borrow)
 * skewMs: { a: 50, b: -50 }   # clock offsets (optional)
 * arrivals: uniform           # or poisson
 * seed: 1
 * demand:                     # requests/s per region, piecewise constant
 *   a: [{ fromS: 0, rate: 100 }, { fromS: 300, rate: 0 }]
 *   b: [{ fromS: 0, rate: 0 }, { fromS: 300, rate: 100 }]
 * partitions: [{ region: b, fromS: 200, toS: 260 }]   # optional
 * shift: { atS: 300, region: b }                      # optional: measure time to follow
 * measure: { fromS: 300, toS: 320 }                   # optional: utilisation within a window
 * forecasts: [{ atS: 270, region: b, expectedRate: 150, fromS: 300, untilS: 320 }]   # optional
 * ```
 */
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { z } from "zod";
import { formatIssue } from "../lambda/core/rules.js";

const segment = z.strictObject({ fromS: z.number().min(0), rate: z.number().min(0) });

/** The scenario schema. */
export const scenarioSchema = z
  .strictObject({
    name: z.string().min(1),
    durationS: z.number().positive().max(86_400).default(600),
    regions: z.array(z.string().min(1)).min(1).max(8),
    capacity: z.number().int().min(1).default(100),
    refillRate: z.number().min(0).default(50),
    lagMs: z.number().min(0).default(1000),
    jitter: z.number().min(0).max(1).default(0.2),
    rttMs: z.number().min(0).default(100),
    skewMs: z.record(z.string(), z.number()).default({}),
    arrivals: z.enum(["uniform", "poisson"]).default("uniform"),
    seed: z.number().int().default(1),
    demand: z.record(z.string(), z.array(segment).min(1)),
    partitions: z.array(z.strictObject({ region: z.string(), fromS: z.number().min(0), toS: z.number().min(0) })).default([]),
    shift: z.strictObject({ atS: z.number().min(0), region: z.string() }).optional(),
    measure: z.strictObject({ fromS: z.number().min(0), toS: z.number().min(0) }).optional(),
    forecasts: z
      .array(
        z.strictObject({
          atS: z.number().min(0),
          region: z.string(),
          expectedRate: z.number().min(0),
          fromS: z.number(),
          untilS: z.number(),
        }),
      )
      .default([]),
  })
  .superRefine((s, ctx) => {
    for (const r of Object.keys(s.demand))
      if (!s.regions.includes(r)) ctx.addIssue({ code: "custom", path: ["demand", r], message: `"${r}" is not in regions` });
    for (const p of s.partitions)
      if (!s.regions.includes(p.region)) ctx.addIssue({ code: "custom", path: ["partitions"], message: `"${p.region}" is not in regions` });
    if (s.shift && !s.regions.includes(s.shift.region))
      ctx.addIssue({ code: "custom", path: ["shift", "region"], message: `"${s.shift.region}" is not in regions` });
  });

/** A validated scenario. */
export type Scenario = z.infer<typeof scenarioSchema>;

/** Validates a scenario object. @throws {Error} naming the field */
export function parseScenario(value: unknown, source: string): Scenario {
  const out = scenarioSchema.safeParse(value);
  if (!out.success) throw new Error(`${source}: ${formatIssue(out.error.issues[0], "")}`);
  return out.data;
}

/** Loads a scenario file (YAML or JSON). */
export function loadScenario(path: string): Scenario {
  return parseScenario(parse(readFileSync(path, "utf8")), path);
}

const r = 50; // the standard refill rate
const std = { durationS: 600, regions: ["a", "b"], capacity: 100, refillRate: r, lagMs: 1000, jitter: 0.2, rttMs: 100 };

const FOLLOW_THE_SUN = {
  ...std,
  name: "follow-the-sun",
  demand: {
    a: [
      { fromS: 0, rate: 2 * r },
      { fromS: 300, rate: 0 },
    ],
    b: [
      { fromS: 0, rate: 0 },
      { fromS: 300, rate: 2 * r },
    ],
  },
  shift: { atS: 300, region: "b" },
};

/** A lightly loaded, b jumps from 0.3·r to 10× for 20 s at 300 s (ARCHITECTURE.md §7's meaningful spike). */
const SPIKE = {
  ...std,
  name: "spike",
  demand: {
    a: [{ fromS: 0, rate: 0.2 * r }],
    b: [
      { fromS: 0, rate: 0.3 * r },
      { fromS: 300, rate: 3 * r },
      { fromS: 320, rate: 0.3 * r },
    ],
  },
};

/**
 * Capacity-dominated agent bursts (issue 13): 3 regions, C = 100, r = 5/s; every 30 s one
 * region in turn asks 40×r for 2 s (the bucket is full again at each burst), a trickle of
 * 0.5/s per region otherwise.
 */
function rotatingBursts() {
  const regions = ["a", "b", "c"];
  const demand: Record<string, { fromS: number; rate: number }[]> = Object.fromEntries(regions.map((x) => [x, [{ fromS: 0, rate: 0.5 }]]));
  for (let k = 0, t = 10; t < 300; k++, t += 30) {
    const segments = demand[regions[k % 3] as string] as { fromS: number; rate: number }[];
    segments.push({ fromS: t, rate: 200 }, { fromS: t + 2, rate: 0.5 });
  }
  return { ...std, name: "rotating-bursts", regions, capacity: 100, refillRate: 5, durationS: 300, arrivals: "poisson", demand };
}

/** The capacity-dominated scenarios: bursts where the capacity, not the refill, decides (borrowing is what serves them). */
export const CAPACITY_SCENARIOS: Record<string, unknown> = {
  "rotating-bursts": rotatingBursts(),
  // A fresh bucket, no refill: one region asks 500/s for 1 s while two others idle. Ideal: all 37.
  "one-region-burst": {
    ...std,
    name: "one-region-burst",
    regions: ["a", "b", "c"],
    capacity: 37,
    refillRate: 0,
    durationS: 10,
    demand: {
      a: [
        { fromS: 0, rate: 0 },
        { fromS: 1, rate: 500 },
        { fromS: 2, rate: 0 },
      ],
      b: [{ fromS: 0, rate: 0 }],
      c: [{ fromS: 0, rate: 0 }],
    },
  },
  // A small bucket (C = 3, r = 1/s) used from one region of three, near its refill boundary.
  "small-bucket": {
    ...std,
    name: "small-bucket",
    regions: ["a", "b", "c"],
    capacity: 3,
    refillRate: 1,
    durationS: 120,
    arrivals: "poisson",
    demand: { a: [{ fromS: 0, rate: 2 }], b: [{ fromS: 0, rate: 0 }], c: [{ fromS: 0, rate: 0 }] },
  },
};

/** The shipped scenarios (standard parameters of the issue: 2 regions, C = 100, r = 50/s, lag 1 s ± 20%, RTT 100 ms, 600 s, total demand 2r). */
export const SCENARIOS: Record<string, unknown> = {
  steady: { ...std, name: "steady", demand: { a: [{ fromS: 0, rate: r }], b: [{ fromS: 0, rate: r }] } },
  "follow-the-sun": FOLLOW_THE_SUN,
  spike: SPIKE,
  "partition-heal": {
    ...std,
    name: "partition-heal",
    demand: {
      a: [{ fromS: 0, rate: 1.5 * r }],
      b: [
        { fromS: 0, rate: 0.5 * r },
        { fromS: 300, rate: 1.5 * r },
      ],
    },
    partitions: [{ region: "b", fromS: 200, toS: 320 }],
  },
  "clock-skew": { ...FOLLOW_THE_SUN, name: "clock-skew", skewMs: { a: 50, b: -50 } },
  forecast: {
    // The spike, announced 30 s ahead: a lightly loaded, b jumps to 10× for 20 s.
    ...SPIKE,
    name: "forecast",
    measure: { fromS: 300, toS: 320 },
    forecasts: [{ atS: 270, region: "b", expectedRate: 3 * r, fromS: 300, untilS: 320 }],
  },
  "three-regions-rotating": {
    ...std,
    name: "three-regions-rotating",
    regions: ["a", "b", "c"],
    demand: {
      a: [
        { fromS: 0, rate: 2 * r },
        { fromS: 200, rate: 0 },
        { fromS: 400, rate: 0 },
      ],
      b: [
        { fromS: 0, rate: 0 },
        { fromS: 200, rate: 2 * r },
        { fromS: 400, rate: 0 },
      ],
      c: [
        { fromS: 0, rate: 0 },
        { fromS: 200, rate: 0 },
        { fromS: 400, rate: 2 * r },
      ],
    },
    shift: { atS: 400, region: "c" },
  },
  ...CAPACITY_SCENARIOS,
};
