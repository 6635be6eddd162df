/** The client SDK against real local servers (handlers + DynamoDB Local), with injected faults. */
import { randomUUID } from "node:crypto";
import { afterEach, describe, expect, inject, it } from "vitest";
import { TOKEN } from "../../lambda/core/units.js";
import { freePort } from "../../local/dynamodb-local.js";
import type { Fault } from "../../local/http-adapter.js";
import { type LocalSystem, startLocalSystem } from "../../local/system.js";
import { TokenBankClient, TokenBankError, withRateLimit } from "../../sdk/index.js";
import { startRegion } from "../helpers/server.js";

let closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers) await c();
  closers = [];
});

async function region(faults: Fault[] = []) {
  const r = await startRegion({ faults });
  closers.push(r.close);
  await r.call("PUT", "/buckets/k", { capacity: 5, refillRate: 0 });
  return r;
}
const consumed = async (r: Awaited<ReturnType<typeof region>>) => Number(((await r.store.getSlice("k"))?.consumed ?? 0n) / TOKEN);

describe("TokenBankClient", () => {
  it.each(["before", "after"] as const)(
    "a server failing the first two attempts with 503 (%s charging): one rate() is charged exactly once",
    async (when) => {
      const faults: Fault[] = [];
      const r = await region(faults);
      faults.push({ path: "/rate", count: 2, status: 503, when });
      const tb = new TokenBankClient({ endpoints: [r.server.url], baseDelayMs: 5 });
      const d = await tb.rate("k");
      expect(d).toMatchObject({ allowed: true, attempts: 3, key: "k" });
      expect(d.replayed).toBe(when === "after"); // the first attempt was charged; the retry replays it
      expect(await consumed(r)).toBe(1);
    },
  );

  it("without an idempotency key the same faults would have charged three times (the test can fail)", async () => {
    const faults: Fault[] = [];
    const r = await region(faults);
    faults.push({ path: "/rate", count: 2, status: 503, when: "after" });
    for (let i = 0; i < 3; i++)
      await fetch(`${r.server.url}/rate`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"key":"k"}' });
    expect(await consumed(r)).toBe(3);
  });

  it("fails over to the next endpoint, never retries a 429 decision, and stops at 4xx errors", async () => {
    const r = await region();
    const dead = `http://127.0.0.1:${await freePort()}`;
    const tb = new TokenBankClient({ endpoints: [dead, r.server.url], baseDelayMs: 5 });
    expect(await tb.rate("k", { tokens: 5 })).toMatchObject({ allowed: true, attempts: 2 });
    const denied = await tb.rate("k");
    expect(denied).toMatchObject({ allowed: false, attempts: 2, reason: "insufficient" });
    await expect(tb.rate("nope")).rejects.toMatchObject({ status: 404, code: "bucket.not_found" });
    await expect(tb.rate("k", { tokens: -1 })).rejects.toBeInstanceOf(TokenBankError);
  });

  it("signs with SigV4 when asked (the AWS SDK's signer)", async () => {
    let seen: Headers | undefined;
    const capture = (async (_url: string | URL | Request, init?: RequestInit) => {
      seen = new Headers(init?.headers);
      return new Response(JSON.stringify({ key: "k", allowed: true }), { status: 200 });
    }) as typeof fetch;
    const tb = new TokenBankClient({
      endpoints: ["https://abc123.execute-api.eu-central-1.amazonaws.com"],
      sigv4: { credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" } },
      fetch: capture,
    });
    await tb.rate("k");
    expect(seen?.get("authorization")).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-central-1\/execute-api\/aws4_request/);
    expect(seen?.get("x-amz-date")).toMatch(/^\d{8}T\d{6}Z$/);
  });

  it("withRateLimit sets RateLimit headers on the app's responses and answers 429 when denied", async () => {
    const r = await region();
    const tb = new TokenBankClient({ endpoints: [r.server.url] });
    const app = withRateLimit(
      tb,
      () => "k",
      async () => new Response("hello", { status: 200 }),
      { tokens: () => 3 },
    );
    const ok = await app(new Request("http://app/x"));
    expect(ok.status).toBe(200);
    expect(await ok.text()).toBe("hello");
    expect(ok.headers.get("ratelimit")).toBe('"k";r=2');
    const no = await app(new Request("http://app/x"));
    expect(no.status).toBe(429);
    expect(no.headers.get("ratelimit-policy")).toBe('"k";q=5');
  });
});

describe("TokenBankClient against the local system, fault injected through the control API", () => {
  let system: LocalSystem | undefined;
  afterEach(async () => {
    await system?.stop();
    system = undefined;
  });

  it("one rate() is charged exactly once", async () => {
    system = await startLocalSystem({
      regions: ["us-east-1", "eu-central-1"],
      rules: [],
      basePort: 0,
      controlPort: 0,
      reconcileEveryMs: 0,
      dynamoEndpoint: inject("dynamoEndpoint"),
      tableName: `sdk-${randomUUID().slice(0, 8)}`,
    });
    const [a] = system.regions;
    await fetch(`${a?.url}/buckets/once`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: '{"capacity": 10, "refillRate": 0}',
    });
    const fault = await fetch(`${system.controlUrl}/faults`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ region: "us-east-1", count: 2, status: 503, when: "after" }),
    });
    expect(fault.status).toBe(200);
    const tb = new TokenBankClient({ endpoints: [a?.url as string], baseDelayMs: 5 });
    expect(await tb.rate("once")).toMatchObject({ allowed: true, attempts: 3, replayed: true });
    expect((await a?.store.getSlice("once"))?.consumed).toBe(TOKEN);
  });
});
