import { describe, expect, it } from "vitest";
import { MemoryBucketStore } from "../../../lambda/adapters/memory/store.js";
import { rulesFromYaml } from "../../../lambda/adapters/rules-file.js";
import { BucketAdmin } from "../../../lambda/app/buckets.js";
import { Limiter } from "../../../lambda/app/limiter.js";
import { NotFoundError, StoreUnavailableError, ValidationError } from "../../../lambda/core/errors.js";
import type { TakeItem, TakeOutcome } from "../../../lambda/ports/bucket-store.js";
import { FakeClock } from "../../helpers/fake-clock.js";

const RULES = rulesFromYaml(
  `rules:
  - name: per-agent
    key: "agent-{{ .Request.Header.X-API-Key }}"
    capacity: 3
    refillRate: 1
  - name: per-tenant
    key: "tenant-{{ .Request.Header.X-Tenant }}"
    capacity: 10
    refillRate: 1
    onError: allow
`,
  "test.yaml",
);

function setup(store = new MemoryBucketStore()) {
  const clock = new FakeClock();
  return { store, clock, limiter: new Limiter({ store, clock, rules: RULES }), admin: new BucketAdmin({ store, clock }) };
}
const H = (agent: string, tenant?: string) => ({ "x-api-key": agent, ...(tenant ? { "x-tenant": tenant } : {}) });

describe("Limiter", () => {
  it("charges every applicable bucket, or none", async () => {
    const { limiter } = setup();
    // The agent bucket (3) runs out before the tenant bucket (10).
    for (let i = 0; i < 3; i++) expect((await limiter.rate({ tokens: 1, headers: H("a", "t") })).allowed).toBe(true);
    const denied = await limiter.rate({ tokens: 1, headers: H("a", "t") });
    expect(denied.allowed).toBe(false);
    expect(denied.buckets[0]?.key).toBe("agent-a"); // most constraining first
    // The tenant was not charged by the denied request: 10 − 3 = 7 left.
    const read = await limiter.rate({ tokens: 0, headers: H("b", "t") });
    expect(read.buckets.find((b) => b.key === "tenant-t")?.remaining).toBe(7n * 10n ** 18n);
  });

  it("denies more than the capacity with a distinct reason and no charge", async () => {
    const { limiter } = setup();
    const d = await limiter.rate({ tokens: 4, headers: H("a") });
    expect(d.allowed).toBe(false);
    expect(d.buckets[0]?.reason).toBe("exceeds_capacity");
    expect(d.buckets[0]?.retryAfterUs).toBeNull();
    expect((await limiter.rate({ tokens: 3, headers: H("a") })).allowed).toBe(true);
  });

  it("reports a missing template header, and an unknown key", async () => {
    const { limiter } = setup();
    await expect(limiter.rate({ tokens: 1, headers: {} })).rejects.toMatchObject({ code: "request.missing_header" });
    await expect(limiter.rate({ key: "nope", tokens: 1, headers: {} })).rejects.toBeInstanceOf(NotFoundError);
    await expect(limiter.rate({ key: "bad\u0001", tokens: 1, headers: {} })).rejects.toBeInstanceOf(ValidationError);
  });

  it("sees admin changes made elsewhere through the version check", async () => {
    const { limiter, admin, clock } = setup();
    await admin.put("k", { capacity: 2, refillRate: 0, onError: "deny" }, "test");
    expect((await limiter.rate({ key: "k", tokens: 2, headers: {} })).allowed).toBe(true);
    // The limiter's cached slice is now stale: capacity raised to 10 (proportional: 0 of 2 → 0 of 10).
    await admin.patch("k", { capacity: 10, refillRate: 1 }, "test");
    clock.advanceMs(3000);
    const d = await limiter.rate({ key: "k", tokens: 3, headers: {} });
    expect(d.allowed).toBe(true);
    expect(d.buckets[0]?.capacity).toBe(10);
  });

  it("a body key that names a bucket charges it alone; {{ .Key }} rules apply only to keys that name none", async () => {
    const store = new MemoryBucketStore();
    const clock = new FakeClock();
    const rules = rulesFromYaml(`rules:\n  - name: per-user\n    key: "user-{{ .Key }}"\n    capacity: 2\n    refillRate: 0\n`, "t.yaml");
    const limiter = new Limiter({ store, clock, rules });
    await new BucketAdmin({ store, clock }).put("k", { capacity: 5, refillRate: 0, onError: "deny" }, "test");
    const named = await limiter.rate({ key: "k", tokens: 5, headers: {} });
    expect(named.allowed).toBe(true);
    expect(named.buckets.map((b) => b.key)).toEqual(["k"]);
    expect(await store.getSlice("user-k")).toBeUndefined();
    const unnamed = await limiter.rate({ key: "alice", tokens: 1, headers: {} });
    expect(unnamed.buckets.map((b) => [b.key, b.rule])).toEqual([["user-alice", "per-user"]]);
  });

  it("idempotency records are scoped to the caller and to the buckets: a key reused elsewhere replays nothing", async () => {
    const store = new MemoryBucketStore();
    const clock = new FakeClock();
    const limiter = new Limiter({ store, clock, rules: [] });
    const admin = new BucketAdmin({ store, clock });
    await admin.put("one", { capacity: 1, refillRate: 0, onError: "deny" }, "test");
    await admin.put("other", { capacity: 1, refillRate: 0, onError: "deny" }, "test");
    const a = await limiter.rate({ key: "one", tokens: 1, headers: {}, idempotencyKey: "k-1", caller: "iam:alice" });
    expect(a.allowed).toBe(true);
    // The same caller retrying: replayed, not charged.
    expect(await limiter.rate({ key: "one", tokens: 1, headers: {}, idempotencyKey: "k-1", caller: "iam:alice" })).toMatchObject({
      allowed: true,
      replayed: true,
    });
    // Another caller with the same key: its own request, charged (and denied: the bucket is empty).
    const b = await limiter.rate({ key: "one", tokens: 1, headers: {}, idempotencyKey: "k-1", caller: "iam:mallory" });
    expect(b.replayed).toBeUndefined();
    expect(b.allowed).toBe(false);
    // The same caller and key for another bucket: charged there, not a replay of the first.
    const c = await limiter.rate({ key: "other", tokens: 1, headers: {}, idempotencyKey: "k-1", caller: "iam:alice" });
    expect(c.replayed).toBeUndefined();
    expect(c.buckets[0]?.key).toBe("other");
  });

  it('refuses a body key that starts with "#" (reserved for tokenbank\'s own items)', async () => {
    const { limiter } = setup();
    await expect(limiter.rate({ key: "#heartbeat", tokens: 1, headers: {} })).rejects.toMatchObject({ code: "request.invalid_key" });
  });

  it("fails open only when every bucket says onError: allow", async () => {
    class DownStore extends MemoryBucketStore {
      override async take(_items: readonly TakeItem[]): Promise<TakeOutcome> {
        throw new StoreUnavailableError("store.unavailable", "down");
      }
    }
    const { limiter } = setup(new DownStore());
    const open = await limiter.rate({ tokens: 1, headers: { "x-tenant": "t" } });
    expect(open).toMatchObject({ allowed: true, failOpen: true });
    await expect(limiter.rate({ tokens: 1, headers: H("a", "t") })).rejects.toMatchObject({ code: "store.unavailable" });
  });

  it("picks up a rule's changed limits for an existing bucket", async () => {
    const store = new MemoryBucketStore();
    const { limiter } = setup(store);
    await limiter.rate({ tokens: 1, headers: H("a") });
    const bigger = rulesFromYaml(
      `rules:\n  - name: per-agent\n    key: "agent-{{ .Request.Header.X-API-Key }}"\n    capacity: 30\n    refillRate: 1\n`,
      "t",
    );
    const fresh = new Limiter({ store, clock: new FakeClock(), rules: bigger });
    const d = await fresh.rate({ tokens: 1, headers: H("a") });
    expect(d.buckets[0]?.capacity).toBe(30);
    expect(d.buckets[0]?.remaining).toBe(19n * 10n ** 18n); // 2/3 of 30 carried over, minus 1
  });
});
