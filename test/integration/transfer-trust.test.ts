/**
 * The lender trusts nothing in a borrow request that it can read from replicated state (or its
 * own rules): a forged request can neither create a bucket that exists nowhere, nor make a
 * bucket's slice hold more than the bucket; a malformed one is a 400, not a 500.
 *
 * And a lender that is short itself does not lend (issue 12: every lend moves the lender's
 * geometry under its own takes in flight, and a region that denies all the time gains nothing by
 * handing its share to another that does too). It says when it stops refusing.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { TOKEN } from "../../lambda/core/units.js";
import { fromWire, toWire } from "../../lambda/handlers/transfer.js";
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const post = (url: string, path: string, body: unknown) =>
  fetch(`${url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

describe("the lend guard", () => {
  it("a lender that denied 120 ms ago refuses without writing and says when it stops; after that it lends", async () => {
    const [us, eu] = system.regions;
    const key = `guard-${randomUUID().slice(0, 6)}`;
    const put = await fetch(`${us?.url}/buckets/${key}`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ capacity: 10, refillRate: 5 }),
    });
    expect(put.status).toBe(201);
    // Drain us-east-1's slice until it denies (its denial is published at once: the first flush).
    let denied = 0;
    for (let i = 0; i < 30 && denied === 0; i++) {
      const r = await post(us?.url as string, "/rate", { key });
      if (r.status === 429) denied++;
    }
    expect(denied).toBe(1);
    const deniedAt = Date.now();
    await sleep(20); // the fire-and-forget flush lands
    const before = await us?.store.getSlice(key);
    expect(before?.lastDeniedUs).toBeDefined();
    // Past the old 50 ms guard, inside the 250 ms one.
    await sleep(Math.max(0, 120 - (Date.now() - deniedAt)));
    const request = { key, borrower: "eu-central-1", demand: 20, needTokens: 1 };
    const refused = (await (await borrow(us?.url as string, request)).json()) as {
      ok: boolean;
      reason?: string;
      retryInMs?: number;
    };
    expect(refused.ok).toBe(false);
    expect(refused.reason).toBe("the lender is short itself");
    expect(refused.retryInMs).toBeGreaterThan(0);
    expect(refused.retryInMs).toBeLessThanOrEqual(250 - 100);
    const after = await us?.store.getSlice(key);
    expect(after?.version).toBe(before?.version); // a refusal writes nothing
    // Once the hint has passed (and nothing was denied since), the same call lends.
    await sleep((refused.retryInMs ?? 0) + 20);
    const lent = (await (await borrow(us?.url as string, request)).json()) as { ok: boolean; lent?: boolean };
    expect(lent.ok).toBe(true);
    expect(eu).toBeDefined();
  });

  it("the hint survives the wire and a malformed one is dropped, never trusted", () => {
    const answer = { ok: false as const, reason: "the lender is short itself", retryInMs: 130 };
    expect(fromWire(JSON.parse(JSON.stringify(toWire(answer))))).toEqual(answer);
    for (const bad of [-1, "130", Number.NaN, null]) {
      expect(fromWire({ ok: false, reason: "x", retryInMs: bad })).toEqual({ ok: false, reason: "x" });
    }
    expect(fromWire(toWire({ ok: false, reason: "unreachable" }))).toEqual({ ok: false, reason: "unreachable" });
  });
});
