/**
 * A lender that is short itself does not lend (issue 12: every lend moves the lender's geometry
 * under its own takes in flight, and a region that denies all the time gains nothing by handing
 * its share to another that does too). It says when it stops refusing, and the borrower's back-off
 * starts from that hint instead of the fixed base. Local system on DynamoDB Local.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
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
    tableName: `lendguard-${randomUUID().slice(0, 8)}`,
    reconcileEveryMs: 0,
  });
});
afterAll(async () => system?.stop());

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
    const refused = (await (await post(us?.url as string, "/internal/borrow", request)).json()) as {
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
    const lent = (await (await post(us?.url as string, "/internal/borrow", request)).json()) as { ok: boolean; lent?: boolean };
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
