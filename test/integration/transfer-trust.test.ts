/**
 * The lender trusts nothing in a borrow request that it can read from replicated state (or its
 * own rules): a forged request can neither create a bucket that exists nowhere, nor make a
 * bucket's slice hold more than the bucket; a malformed one is a 400, not a 500.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { TOKEN } from "../../lambda/core/units.js";
import { type LocalSystem, startLocalSystem } from "../../local/system.js";

let system: LocalSystem;
beforeAll(async () => {
  system = await startLocalSystem({
    regions: ["us-east-1", "eu-central-1"],
    rules: [],
    basePort: 0,
    controlPort: 0,
    lagMs: 100,
    dynamoEndpoint: inject("dynamoEndpoint"),
    tableName: `trust-${randomUUID().slice(0, 8)}`,
    reconcileEveryMs: 0,
  });
});
afterAll(async () => system?.stop());

const forged = (key: string) => ({
  key,
  borrower: "eu-central-1",
  demand: 500_000_000,
  bucket: { limits: { capacity: 1_000_000_000, refillRate: 0, onError: "deny" }, source: { kind: "override", version: 1 } },
});
const borrow = (url: string, body: unknown) =>
  fetch(`${url}/internal/borrow`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });

describe("the transfer route", () => {
  it("an offer carries nothing it trusts: amounts in it are malformed, and a giver that is no peer moves nothing", async () => {
    const [us] = system.regions;
    const url = us?.url as string;
    const withAmounts = await borrow(url, { kind: "offer", key: "ten", giver: "eu-central-1", given: { cap: "1000000" } });
    expect(await withAmounts.json()).toEqual({ ok: false, reason: "malformed offer" });
    expect(await (await borrow(url, { kind: "offer", key: "" })).json()).toEqual({ ok: false, reason: "malformed offer" });
    for (const giver of ["mars", "us-east-1"]) {
      expect(await (await borrow(url, { kind: "offer", key: "ten", giver })).json()).toEqual({ ok: true, collected: false });
    }
  });

  it("refuses to create a bucket that exists nowhere from the limits a request carries", async () => {
    const [us] = system.regions;
    const res = await borrow(us?.url as string, forged("ghost"));
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ok: false });
    expect(await us?.store.getSlice("ghost")).toBeUndefined();
    expect(await us?.store.getConfig("ghost")).toBeUndefined();
  });

  it("lends from a real bucket by its own limits: never more than the bucket, whatever the request claims", async () => {
    const [us, eu] = system.regions;
    const put = await fetch(`${us?.url}/buckets/ten`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ capacity: 10, refillRate: 0 }),
    });
    expect(put.status).toBe(201);
    // eu-central-1 has never served it; us-east-1 holds it. The forged request claims 1e9.
    const res = await borrow(us?.url as string, forged("ten"));
    const answer = (await res.json()) as { ok: boolean; given?: { cap: string; tokens: string } };
    if (answer.ok) {
      expect(BigInt(answer.given?.tokens ?? "0")).toBeLessThanOrEqual(10n * TOKEN);
      expect(BigInt(answer.given?.cap ?? "0")).toBeLessThanOrEqual(1_000_000n);
    }
    const lender = await us?.store.getSlice("ten");
    expect(lender?.limits.capacity).toBe(10);
    // Let replication and the merge land, then ask the borrower region itself: at most 10 tokens world-wide.
    await new Promise((r) => setTimeout(r, 1500));
    const codes = [];
    for (let i = 0; i < 15; i++) {
      const r = await fetch(`${eu?.url}/rate`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"key":"ten"}' });
      codes.push(r.status);
    }
    const fromUs = [];
    for (let i = 0; i < 15; i++) {
      const r = await fetch(`${us?.url}/rate`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"key":"ten"}' });
      fromUs.push(r.status);
    }
    expect([...codes, ...fromUs].filter((c) => c === 200).length).toBeLessThanOrEqual(10);
  });

  it("answers 400 to a body that is not JSON", async () => {
    const [us] = system.regions;
    const res = await borrow(us?.url as string, "{not json");
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("request.invalid_json");
  });
});
