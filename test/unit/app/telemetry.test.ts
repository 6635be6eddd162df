import { describe, expect, it } from "vitest";
import { MemoryBucketStore } from "../../../lambda/adapters/memory/store.js";
import { powertoolsTelemetry } from "../../../lambda/adapters/powertools.js";
import { BucketAdmin } from "../../../lambda/app/buckets.js";
import { Limiter } from "../../../lambda/app/limiter.js";
import { makeRateHandler } from "../../../lambda/handlers/rate.js";
import type { MetricName, Telemetry } from "../../../lambda/ports/telemetry.js";
import { FakeClock } from "../../helpers/fake-clock.js";

const event = (body: unknown) =>
  ({
    version: "2.0",
    rawPath: "/rate",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    requestContext: { http: { method: "POST" } },
  }) as never;

describe("rate handler telemetry", () => {
  it("counts decisions, admissions and denials", async () => {
    const seen: Partial<Record<MetricName, number>> = {};
    const telemetry: Telemetry = {
      metric: (n, v) => {
        seen[n] = (seen[n] ?? 0) + v;
      },
      log: () => undefined,
    };
    const store = new MemoryBucketStore("r1");
    const clock = new FakeClock();
    await new BucketAdmin({ store, clock }).put("k", { capacity: 2, refillRate: 0, onError: "deny" }, "t");
    const handler = makeRateHandler({ limiter: new Limiter({ store, clock, rules: [] }), region: "r1", telemetry });
    for (let i = 0; i < 3; i++) await handler(event({ key: "k" }), {} as never);
    expect(seen).toMatchObject({ Decisions: 3, Allowed: 2, Denied: 1 });
  });

  it("flushes Powertools metrics as CloudWatch EMF after each invocation", async () => {
    const lines: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string | Uint8Array) => {
      lines.push(...String(chunk).split("\n"));
      return true;
    }) as typeof process.stdout.write;
    try {
      const store = new MemoryBucketStore("r1");
      const clock = new FakeClock();
      await new BucketAdmin({ store, clock }).put("k", { capacity: 2, refillRate: 0, onError: "deny" }, "t");
      const obs = powertoolsTelemetry("rate", "r1");
      const handler = obs.wrap(
        makeRateHandler({ limiter: new Limiter({ store, clock, rules: [] }), region: "r1", telemetry: obs.telemetry }),
      );
      await handler(event({ key: "k" }), { functionName: "f", awsRequestId: "1" } as never);
    } finally {
      process.stdout.write = write;
    }
    const emf = lines
      .map((l) => {
        try {
          return JSON.parse(l);
        } catch {
          return undefined;
        }
      })
      .find((j) => j?._aws?.CloudWatchMetrics);
    expect(emf).toBeDefined();
    expect(emf._aws.CloudWatchMetrics[0].Namespace).toBe("tokenbank");
    expect(emf.region).toBe("r1");
    expect(emf.Allowed).toBe(1);
  });
});
