/**
 * The OpenAPI document is honest: every route and status the handlers produce (a matrix of real
 * requests against a local region on DynamoDB Local) is documented, and every body validates
 * against its schema with closed objects: a field the document lacks fails this test.
 */
import Ajv2020 from "ajv/dist/2020.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rulesFromYaml } from "../../lambda/adapters/rules-file.js";
import { openApiDocument } from "../../lambda/openapi.js";
import { matchPath } from "../../local/http-adapter.js";
import { startRegion } from "../helpers/server.js";

const ajv = new Ajv2020.default({ strict: false, allErrors: true });
ajv.addSchema({ ...openApiDocument, $id: "doc" });
type Operation = { responses: Record<string, { content?: Record<string, { schema: object }> }> };

/** The documented operation for a method and concrete path. */
function operation(method: string, path: string): Operation | undefined {
  for (const [template, ops] of Object.entries(openApiDocument.paths)) {
    if (matchPath(template, path)) return (ops as Record<string, Operation>)[method.toLowerCase()];
  }
  return undefined;
}

let region: Awaited<ReturnType<typeof startRegion>>;
beforeAll(async () => {
  region = await startRegion({
    rules: rulesFromYaml(`rules:\n  - key: "agent-{{ .Request.Header.X-API-Key }}"\n    capacity: 1\n    refillRate: 0\n`, "t"),
  });
});
afterAll(async () => region?.close());

const body = (v: unknown) => (typeof v === "string" ? v : JSON.stringify(v));
const matrix: [string, string, unknown?, Record<string, string>?][] = [
  ["PUT", "/buckets/a", { capacity: 2, refillRate: 1, minCapacity: 1, predictive: false }],
  ["PUT", "/buckets/a", { capacity: 2, refillRate: 1 }],
  ["PATCH", "/buckets/a", { refillRate: 2, inherit: "as-is" }],
  ["PATCH", "/buckets/a", { capacity: 0 }],
  ["PATCH", "/buckets/missing", { capacity: 1 }],
  ["GET", "/buckets/a"],
  ["GET", "/buckets/a/history"],
  ["GET", "/buckets/missing/history"],
  ["POST", "/rate", { key: "a", tokens: 2 }, { "idempotency-key": "once" }],
  ["POST", "/rate", { key: "a", tokens: 2 }, { "idempotency-key": "once" }],
  ["POST", "/rate", { key: "a", tokens: 1 }, { "idempotency-key": "once" }],
  ["POST", "/rate", { key: "a" }],
  ["POST", "/rate", { key: "a", tokens: 9 }],
  ["POST", "/rate", { key: "a", tokens: 0 }],
  ["POST", "/rate", {}, { "x-api-key": "z" }],
  ["POST", "/rate", {}],
  ["POST", "/rate", { key: "missing" }],
  ["POST", "/rate", '{"key": '],
  ["POST", "/rate", { key: 5 }],
  ["POST", "/rate", "x".repeat(70_000)],
  ["GET", "/status/a"],
  ["GET", "/status/missing"],
  ["GET", "/health"],
  ["GET", "/openapi.json"],
  ["DELETE", "/buckets/a"],
  ["DELETE", "/buckets/a"],
];

describe("OpenAPI contract", () => {
  it("documents every route and status the handlers produce, with valid bodies", async () => {
    const seen = new Set<string>();
    for (const [method, path, payload, headers] of matrix) {
      const res = await fetch(region.server.url + path, {
        method,
        headers: { ...(payload !== undefined ? { "content-type": "application/json" } : {}), ...headers },
        body: payload === undefined ? undefined : body(payload),
      });
      const text = await res.text();
      const op = operation(method, path);
      expect(op, `${method} ${path} is not documented`).toBeDefined();
      const documented = op?.responses[String(res.status)];
      expect(documented, `${method} ${path} answered ${res.status}, which the document lacks`).toBeDefined();
      const schema = documented?.content?.["application/json"]?.schema;
      if (schema) {
        const validate = ajv.compile({
          $ref: `doc#/paths/${jsonPointer(templateOf(path))}/${method.toLowerCase()}/responses/${res.status}/content/application~1json/schema`,
        });
        const ok = validate(JSON.parse(text));
        expect(ok, `${method} ${path} ${res.status}: ${ajv.errorsText(validate.errors)}: ${text.slice(0, 300)}`).toBe(true);
      } else {
        expect(text).toBe("");
      }
      seen.add(`${method} ${templateOf(path)} ${res.status}`);
    }
    // The matrix covers every documented operation.
    for (const [template, ops] of Object.entries(openApiDocument.paths)) {
      for (const method of Object.keys(ops))
        expect(
          [...seen].some((s) => s.startsWith(`${method.toUpperCase()} ${template} `)),
          `${method} ${template} untested`,
        ).toBe(true);
    }
  });

  it("fails when a handler returns a field the document lacks", () => {
    const validate = ajv.compile({ $ref: "doc#/components/schemas/RateDecision" });
    const good = {
      key: "a",
      allowed: true,
      tokens: 1,
      remaining: 0,
      capacity: 1,
      refillRate: 0,
      retryAfterMs: 0,
      resetAfterMs: null,
      region: "r",
      buckets: [{ key: "a", allowed: true, tokens: 1, remaining: 0, capacity: 1, refillRate: 0, retryAfterMs: 0, resetAfterMs: null }],
    };
    expect(validate(good)).toBe(true);
    expect(validate({ ...good, surprise: 1 })).toBe(false);
  });
});

function templateOf(path: string): string {
  for (const template of Object.keys(openApiDocument.paths)) if (matchPath(template, path)) return template;
  return path;
}

function jsonPointer(s: string): string {
  return s.replace(/~/g, "~0").replace(/\//g, "~1");
}
