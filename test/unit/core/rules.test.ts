import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { readEnv } from "../../../lambda/adapters/env.js";
import { rulesFromYaml, rulesYamlToJson } from "../../../lambda/adapters/rules-file.js";
import { ValidationError } from "../../../lambda/core/errors.js";
import { matchRules } from "../../../lambda/core/rules.js";
import { parseTemplate, renderTemplate } from "../../../lambda/core/template.js";

describe("templates", () => {
  it("renders headers case-insensitively and the body key", () => {
    const t = parseTemplate("agent-{{ .Request.Header.X-API-Key }}:{{.Key}}");
    expect(renderTemplate(t, { key: "k1", headers: { "x-api-key": "abc" } })).toEqual({ ok: true, key: "agent-abc:k1" });
    expect(renderTemplate(t, { key: "k1", headers: {} })).toEqual({ ok: false, missing: "x-api-key" });
    expect(t.usesKey).toBe(true);
  });

  it("| sha256 replaces a value by its SHA-256 hex digest: no secret in the key", () => {
    const t = parseTemplate("agent-{{ .Request.Header.X-API-Key | sha256 }}");
    const r = renderTemplate(t, { headers: { "x-api-key": "sk-live-secret" } });
    expect(r).toEqual({ ok: true, key: `agent-${createHash("sha256").update("sk-live-secret").digest("hex")}` });
    expect(JSON.stringify(r)).not.toContain("sk-live-secret");
    expect(renderTemplate(parseTemplate("u-{{.Key|sha256}}"), { key: "abc", headers: {} })).toEqual({
      ok: true,
      key: "u-ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    });
    expect(() => parseTemplate("a-{{ .Key | md5 }}")).toThrow(/unknown filter "md5"/);
    expect(() => parseTemplate("a-{{ .Key | sha256 | sha256 }}")).toThrow(/twice/);
  });

  it("rejects unknown placeholders and unbalanced braces", () => {
    expect(() => parseTemplate("a-{{ .Request.Query.x }}")).toThrow(/unknown placeholder/);
    expect(() => parseTemplate("a-{{ .Key")).toThrow(/unbalanced/);
  });
});

describe("rules file", () => {
  const yaml = (body: string) => rulesFromYaml(body, "buckets.yaml");

  it("parses valid rules with defaults", () => {
    const rules = yaml(`rules:\n  - name: a\n    key: "a-{{ .Key }}"\n    capacity: 5\n    refillRate: 0.5\n`);
    expect(rules).toHaveLength(1);
    expect(rules[0]?.limits).toEqual({ capacity: 5, refillRate: 0.5, onError: "deny", ttl: 3600 }); // a rule without ttl gets the default
  });

  it.each([
    [`rules:\n  - name: a\n    key: "a-{{ .Key }}"\n    capacity: -1\n    refillRate: 1\n`, /rule 1 \(a\): capacity: must be ≥ 1/],
    [
      `rules:\n  - key: "a-{{ .Key }}"\n    capacity: 1\n    refillRate: 0.0000001\n`,
      /rule 1: refillRate: must have at most 6 decimal places/,
    ],
    [
      `rules:\n  - key: "a-{{ .Key }}"\n    capacity: 1\n    refillRate: 1\n  - name: b\n    key: fixed\n    capacity: 1\n    refillRate: 1\n`,
      /rule 2 \(b\): key: "fixed" has no placeholder/,
    ],
    [`rules:\n  - key: "a-{{ .Nope }}"\n    capacity: 1\n    refillRate: 1\n`, /rule 1: key: unknown placeholder/],
    [`rules:\n  - key: "a-{{ .Key }}"\n    capacity: 1\n    refillRate: 1\n    burst: 3\n`, /rule 1: unknown field "burst"/],
    [
      `rules:\n  - key: "a-{{ .Key }}"\n    capacity: 1\n    refillRate: 1\n    ttl: 2.5\n`,
      /rule 1: ttl: must be a whole number of seconds/,
    ],
    [`rules: 3\n`, /buckets.yaml: rules: must be a list of rules/],
    [`rules: [\n`, /buckets.yaml:\d+: not valid YAML/],
    [
      `rules:\n  - name: x\n    key: "a-{{ .Key }}"\n    capacity: 1\n    refillRate: 1\n  - name: x\n    key: "b-{{ .Key }}"\n    capacity: 1\n    refillRate: 1\n`,
      /rule 2 \(x\): name: "x" is used twice/,
    ],
  ])("names the rule and field: %#", (body, message) => {
    let thrown: unknown;
    try {
      yaml(body);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ValidationError);
    expect((thrown as ValidationError).code).toBe("config.invalid_rules");
    expect((thrown as ValidationError).message).toMatch(message);
  });

  it("applies {{ .Key }} rules only with a body key, header rules only without", () => {
    const rules = yaml(
      `rules:\n  - name: k\n    key: "u-{{ .Key }}"\n    capacity: 1\n    refillRate: 1\n  - name: h\n    key: "h-{{ .Request.Header.X-A }}"\n    capacity: 1\n    refillRate: 1\n`,
    );
    expect(matchRules(rules, { key: "z", headers: { "x-a": "1" } }).matches.map((m) => m.key)).toEqual(["u-z"]);
    expect(matchRules(rules, { headers: { "x-a": "1" } }).matches.map((m) => m.key)).toEqual(["h-1"]);
    expect(matchRules(rules, { headers: {} }).missing).toEqual(["x-a"]);
  });
});

describe("rules in the function environment", () => {
  const file = `# comment\nrules:\n  - name: a\n    key: "a-{{ .Key }}"\n    capacity: 5\n    refillRate: 0.5\n    ttl: 60\n`;
  const env = (vars: Record<string, string>) => readEnv({ TOKENBANK_TABLE: "t", AWS_REGION: "us-east-1", ...vars });

  it("reads the JSON the CDK app writes as the same rules as the YAML file", () => {
    const json = rulesYamlToJson(file, "buckets.yaml");
    expect(json).not.toContain("comment");
    expect(env({ TOKENBANK_RULES_JSON: json }).rules).toEqual(rulesFromYaml(file, "buckets.yaml"));
    expect(env({}).rules).toEqual([]);
  });

  it("rejects invalid JSON, invalid rules and the old YAML variable with a clear message", () => {
    expect(() => env({ TOKENBANK_RULES_JSON: "{" })).toThrow(/TOKENBANK_RULES_JSON: not valid JSON/);
    expect(() => env({ TOKENBANK_RULES_JSON: '{"rules":[{"key":"a-{{ .Key }}","capacity":0,"refillRate":1}]}' })).toThrow(
      /TOKENBANK_RULES_JSON: rule 1: capacity: must be ≥ 1/,
    );
    expect(() => env({ TOKENBANK_RULES_YAML: file })).toThrow(/TOKENBANK_RULES_YAML is not read/);
  });

  it("reads the numeric settings with their defaults, and rejects what is not a whole number in range", () => {
    expect(env({})).toMatchObject({ dynamoTimeoutMs: 1000, leaseMs: 100, jobBudgetMs: 40_000 });
    expect(env({ TOKENBANK_LEASE_MS: "0", TOKENBANK_JOB_BUDGET_MS: "5000" })).toMatchObject({ leaseMs: 0, jobBudgetMs: 5000 });
    expect(() => env({ TOKENBANK_JOB_BUDGET_MS: "forty" })).toThrow(/TOKENBANK_JOB_BUDGET_MS must be a whole number/);
    expect(() => env({ TOKENBANK_LEASE_MS: "5000" })).toThrow(/TOKENBANK_LEASE_MS must be a whole number from 0 to 1000/);
  });
});
