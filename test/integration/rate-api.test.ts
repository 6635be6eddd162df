/** The regional HTTP API end to end: handlers → limiter → DynamoDB Local. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rulesFromYaml } from "../../lambda/adapters/rules-file.js";
import { startRegion } from "../helpers/server.js";

const RULES = rulesFromYaml(
  `rules:
  - name: per-agent
    key: "agent-{{ .Request.Header.X-API-Key }}"
    capacity: 5
    refillRate: 0
  - name: per-org
    key: "org-{{ .Request.Header.X-Org }}"
    capacity: 8
    refillRate: 0
`,
  "test.yaml",
);

let region: Awaited<ReturnType<typeof startRegion>>;
beforeAll(async () => {
  region = await startRegion({ rules: RULES });
});
afterAll(async () => region?.close());

/** Runs `total` requests from `clients` concurrent loops; returns the status codes. */
async function hammer(total: number, clients: number, send: () => Promise<number>): Promise<number[]> {
  const codes: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (next < total) {
        next++;
        codes.push(await send());
      }
    }),
  );
  return codes;
}

describe("POST /rate", () => {
  it("capacity 100, refill 0, 1000 requests from 64 clients: exactly 100 allowed", async () => {
    // Prepare
    expect((await region.call("PUT", "/buckets/pool", { capacity: 100, refillRate: 0 })).status).toBe(201);
    // Act
    const codes = await hammer(1000, 64, async () => (await region.call("POST", "/rate", { key: "pool" })).status);
    // Assess
    expect(codes.filter((c) => c === 200)).toHaveLength(100);
    expect(codes.filter((c) => c === 429)).toHaveLength(900);
    const status = await region.call("GET", "/status/pool");
    expect(status.body).toMatchObject({ key: "pool", tokens: 0, capacity: 100 });
    const slice = await region.store.getSlice("pool");
    expect(slice?.consumed).toBe(100n * 10n ** 18n); // nothing lost, nothing double-counted
  });

  it("refills: capacity 10 at 5/s, drained, then 1 s later about 5 more", async () => {
    await region.call("PUT", "/buckets/refill", { capacity: 10, refillRate: 5 });
    let drained = 0;
    while ((await region.call("POST", "/rate", { key: "refill" })).status === 200) drained++;
    expect(drained).toBeGreaterThanOrEqual(10);
    await new Promise((r) => setTimeout(r, 1000));
    let allowed = 0;
    for (let i = 0; i < 10; i++) if ((await region.call("POST", "/rate", { key: "refill" })).status === 200) allowed++;
    expect(allowed).toBeGreaterThanOrEqual(4);
    expect(allowed).toBeLessThanOrEqual(6);
  });

  it("answers with the contract, RateLimit headers and Retry-After", async () => {
    await region.call("PUT", "/buckets/contract", { capacity: 2, refillRate: 1 });
    const ok = await region.call("POST", "/rate", { key: "contract", tokens: 2 });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({
      allowed: true,
      key: "contract",
      tokens: 2,
      remaining: 0,
      capacity: 2,
      refillRate: 1,
      retryAfterMs: 0,
      region: "us-east-1",
    });
    expect(ok.headers.get("ratelimit-policy")).toBe('"contract";q=2;w=2');
    expect(ok.headers.get("ratelimit")).toMatch(/^"contract";r=0;t=2$/);
    const no = await region.call("POST", "/rate", { key: "contract" });
    expect(no.status).toBe(429);
    expect(no.body.allowed).toBe(false);
    expect(no.body.retryAfterMs).toBeGreaterThan(0);
    expect(no.body.retryAfterMs).toBeLessThanOrEqual(1000);
    expect(no.headers.get("retry-after")).toBe("1");
  });

  it("applies every rule the headers render, all or nothing, most constraining first", async () => {
    const h = { "x-api-key": "k1", "x-org": "o1" };
    for (let i = 0; i < 5; i++) expect((await region.call("POST", "/rate", {}, h)).status).toBe(200);
    const denied = await region.call("POST", "/rate", {}, h);
    expect(denied.status).toBe(429);
    expect(denied.body.buckets.map((b: { key: string }) => b.key)).toEqual(["agent-k1", "org-o1"]);
    // org-o1 was not charged by the denied request: another agent gets the remaining 3.
    const other = { "x-api-key": "k2", "x-org": "o1" };
    const codes = [];
    for (let i = 0; i < 4; i++) codes.push((await region.call("POST", "/rate", {}, other)).status);
    expect(codes).toEqual([200, 200, 200, 429]);
  });

  it("n > capacity is denied with reason exceeds_capacity; tokens 0 only reads", async () => {
    await region.call("PUT", "/buckets/big", { capacity: 3, refillRate: 1 });
    const big = await region.call("POST", "/rate", { key: "big", tokens: 4 });
    expect(big.status).toBe(429);
    expect(big.body).toMatchObject({ reason: "exceeds_capacity", retryAfterMs: null });
    expect(big.headers.get("retry-after")).toBeNull();
    const read = await region.call("POST", "/rate", { key: "big", tokens: 0 });
    expect(read.body).toMatchObject({ allowed: true, remaining: 3 });
  });

  it("PUT on a rule-produced key overrides the rule's limits", async () => {
    const h = { "x-api-key": "ov" };
    await region.call("POST", "/rate", {}, h);
    expect((await region.call("GET", "/buckets/agent-ov")).body).toMatchObject({ source: "rule", rule: "per-agent", capacity: 5 });
    await region.call("PUT", "/buckets/agent-ov", { capacity: 50, refillRate: 0 });
    const r = await region.call("POST", "/rate", {}, h);
    expect(r.body).toMatchObject({ capacity: 50, remaining: 39 }); // 4/5 of 50 carried over, minus 1
  });
});

describe("admin /buckets/{key}", () => {
  it("creates, reads, patches and deletes", async () => {
    expect((await region.call("PUT", "/buckets/adm", { capacity: 10, refillRate: 2.5, ttl: 60 })).status).toBe(201);
    expect((await region.call("PUT", "/buckets/adm", { capacity: 10, refillRate: 2.5 })).status).toBe(200);
    const patched = await region.call("PATCH", "/buckets/adm", { capacity: 20, onError: "allow" });
    expect(patched.body).toMatchObject({ key: "adm", capacity: 20, refillRate: 2.5, onError: "allow", source: "override", version: 3 });
    expect((await region.call("GET", "/buckets/adm")).body).toMatchObject({ capacity: 20 });
    expect((await region.call("DELETE", "/buckets/adm")).status).toBe(204);
    expect((await region.call("GET", "/buckets/adm")).body.error.code).toBe("bucket.not_found");
    expect((await region.call("POST", "/rate", { key: "adm" })).status).toBe(404);
    expect((await region.call("PATCH", "/buckets/none", { capacity: 1 })).status).toBe(404);
  });
});

describe("bad input: a 4xx with a code, and no state change", () => {
  const longKey = "k".repeat(513);
  const cases: [string, string, string, unknown, Record<string, string>, number, string][] = [
    ["malformed JSON", "POST", "/rate", '{"key": "bad", ', {}, 400, "request.malformed_json"],
    ["wrong content type", "POST", "/rate", undefined, { "content-type": "text/plain" }, 415, "request.unsupported_media_type"],
    ["negative tokens", "POST", "/rate", { key: "bad", tokens: -1 }, {}, 400, "request.invalid_tokens"],
    ["fractional tokens", "POST", "/rate", { key: "bad", tokens: 1.5 }, {}, 400, "request.invalid_tokens"],
    ["non-numeric tokens", "POST", "/rate", { key: "bad", tokens: "5" }, {}, 400, "request.invalid_tokens"],
    ["tokens above 1e9", "POST", "/rate", { key: "bad", tokens: 1e9 + 1 }, {}, 400, "request.invalid_tokens"],
    ["key over 512 bytes", "POST", "/rate", { key: longKey }, {}, 400, "request.invalid_key"],
    ["key with control characters", "POST", "/rate", { key: "ba\u0007d" }, {}, 400, "request.invalid_key"],
    ["non-string key", "POST", "/rate", { key: 5 }, {}, 400, "request.invalid_key"],
    ["unknown route", "GET", "/nope", undefined, {}, 404, "route.not_found"],
    ["wrong method", "DELETE", "/rate", undefined, {}, 405, "route.method_not_allowed"],
    ["missing template header", "POST", "/rate", {}, { "x-org": "" }, 400, "request.missing_header"],
    ["bad PUT body", "PUT", "/buckets/bad", { capacity: 0, refillRate: 1 }, {}, 400, "request.invalid_capacity"],
    ["bad refill precision", "PATCH", "/buckets/bad", { refillRate: 0.0000001 }, {}, 400, "request.invalid_refill_rate"],
    ["empty PATCH", "PATCH", "/buckets/bad", {}, {}, 400, "request.invalid_body"],
    ["unknown PUT field", "PUT", "/buckets/bad", { capacity: 1, refillRate: 1, burst: 2 }, {}, 400, "request.invalid_body"],
  ];

  beforeAll(async () => {
    await region.call("PUT", "/buckets/bad", { capacity: 10, refillRate: 0 });
    await region.call("POST", "/rate", { key: "bad", tokens: 3 });
  });

  it.each(cases)("%s", async (name, method, path, body, headers, status, code) => {
    const before = await region.store.getSlice("bad");
    const init: RequestInit = { method, headers: { ...(body !== undefined ? { "content-type": "application/json" } : {}), ...headers } };
    if (body !== undefined) init.body = typeof body === "string" ? body : JSON.stringify(body);
    if (name === "wrong content type") init.body = '{"key":"bad"}';
    const res = await fetch(region.server.url + path, name === "wrong content type" ? { method, headers, body: '{"key":"bad"}' } : init);
    const json = (await res.json()) as { error: { code: string; message: string } };
    expect(res.status).toBe(status);
    expect(json.error.code).toBe(code);
    expect(typeof json.error.message).toBe("string");
    const after = await region.store.getSlice("bad");
    expect(after).toEqual(before);
    expect((await region.call("GET", "/status/bad")).body.tokens).toBe(7);
  });
});
