/**
 * The rules file (`buckets.yaml`): rules whose key templates produce buckets from requests.
 *
 * ```yaml
 * rules:
 *   - name: per-agent
 *     key: "agent-api-key-{{ .Request.Header.X-API-Key }}"
 *     capacity: 100
 *     refillRate: 5
 *     ttl: 3600
 * ```
 */
import * as z from "zod/mini";
import { ValidationError } from "./errors.js";
import { type BucketLimits, DEFAULT_RULE_TTL_SECONDS, limitFields } from "./limits.js";
import { parseTemplate, renderTemplate, type Template, type TemplateInput } from "./template.js";

/**
 * Live buckets a rule may have in one region unless it says otherwise (`maxBuckets`): every new
 * header value makes a bucket, so a rule keyed on an unauthenticated header is bounded.
 */
export const DEFAULT_RULE_MAX_BUCKETS = 100_000;

/** One validated rule. */
export interface Rule {
  readonly name: string;
  readonly template: Template;
  readonly limits: BucketLimits;
  /** Live buckets this rule may have in one region; a request that would create one more is refused. */
  readonly maxBuckets: number;
}

/** A bucket a rule produced for one request. */
export interface RuleMatch {
  readonly rule: Rule;
  readonly key: string;
}

const ruleSchema = z.strictObject({
  name: z.optional(
    z
      .string({ error: "must be a string" })
      .check(z.minLength(1, { error: "must not be empty" }), z.maxLength(128, { error: "must be at most 128 characters" })),
  ),
  key: z.string({ error: "must be a template string" }).check(z.minLength(1, { error: "must not be empty" })),
  ...limitFields,
  maxBuckets: z.optional(
    z
      .number({ error: "must be a whole number ≥ 1" })
      .check(z.int({ error: "must be a whole number ≥ 1" }), z.minimum(1, { error: "must be a whole number ≥ 1" })),
  ),
});
const fileSchema = z.strictObject({ rules: z.array(z.unknown(), { error: "must be a list of rules" }) });

/**
 * Validates the parsed content of a rules file. Errors name the rule and the field.
 * @throws {ValidationError} `config.invalid_rules`
 */
export function parseRules(content: unknown, source = "buckets.yaml"): Rule[] {
  if (content === null || content === undefined) return [];
  const file = fileSchema.safeParse(content);
  if (!file.success) {
    throw new ValidationError("config.invalid_rules", `${source}: ${formatIssue(file.error.issues[0], "")}`);
  }
  const names = new Set<string>();
  return file.data.rules.map((raw, index) => {
    const label = `rule ${index + 1}${isNamed(raw) ? ` (${raw.name})` : ""}`;
    const parsed = ruleSchema.safeParse(raw);
    if (!parsed.success) {
      throw new ValidationError("config.invalid_rules", `${source}: ${label}: ${formatIssue(parsed.error.issues[0], "")}`);
    }
    const { name = `rule-${index + 1}`, key, maxBuckets = DEFAULT_RULE_MAX_BUCKETS, ...given } = parsed.data;
    const limits = { ...given, ttl: given.ttl ?? DEFAULT_RULE_TTL_SECONDS };
    if (names.has(name)) throw new ValidationError("config.invalid_rules", `${source}: ${label}: name: "${name}" is used twice`);
    names.add(name);
    let template: Template;
    try {
      template = parseTemplate(key);
    } catch (error) {
      throw new ValidationError("config.invalid_rules", `${source}: ${label}: key: ${(error as Error).message}`);
    }
    if (template.parts.every((p) => p.kind === "text")) {
      throw new ValidationError(
        "config.invalid_rules",
        `${source}: ${label}: key: "${key}" has no placeholder; create fixed buckets with PUT /buckets/{key}`,
      );
    }
    return { name, template, limits, maxBuckets };
  });
}

/** Outcome of matching the rules against one request. */
export interface RuleMatching {
  readonly matches: readonly RuleMatch[];
  /** Inputs that stopped a rule from rendering (header names, or `key`). */
  readonly missing: readonly string[];
}

/**
 * The rules that apply to a request. With a body `key`, only rules using `{{ .Key }}` apply;
 * without one, only the rules that do not.
 */
export function matchRules(rules: readonly Rule[], input: TemplateInput): RuleMatching {
  const matches: RuleMatch[] = [];
  const missing = new Set<string>();
  for (const rule of rules) {
    if (rule.template.usesKey !== (input.key !== undefined)) continue;
    const r = renderTemplate(rule.template, input);
    if (r.ok) matches.push({ rule, key: r.key });
    else missing.add(r.missing);
  }
  return { matches, missing: [...missing] };
}

/**
 * What a rule matches, in words, for `npm start` and the CLI.
 * @example describeRule(rule) // "requests without a body key that carry X-API-Key"
 */
export function describeRule(rule: Rule): string {
  const headers = rule.template.parts.flatMap((p) => (p.kind === "header" ? [p.name] : []));
  const needs = headers.length > 0 ? ` that carry ${headers.join(" and ")}` : "";
  return rule.template.usesKey ? `requests whose body key names no bucket${needs}` : `requests without a body key${needs}`;
}

function isNamed(raw: unknown): raw is { name: string } {
  return typeof raw === "object" && raw !== null && typeof (raw as { name?: unknown }).name === "string";
}

/**
 * A readable message for an issue whose schema gave none: `zod/mini` (used to keep the Lambda
 * bundles small) loads no locale, so its own messages are a bare "Invalid input".
 */
function describe(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case "unrecognized_keys":
      return `unknown field${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `"${k}"`).join(", ")}`;
    case "invalid_type":
      return `must be ${issue.expected === "object" ? "an object" : `a ${issue.expected}`}`;
    case "too_small":
      return issue.origin === "string" ? `must have at least ${issue.minimum} characters` : `must be ≥ ${issue.minimum}`;
    case "too_big":
      return issue.origin === "string" ? `must have at most ${issue.maximum} characters` : `must be ≤ ${issue.maximum}`;
    case "invalid_union":
      return "has the wrong type";
    default:
      return issue.message;
  }
}

/** `field: message` for a zod issue. */
export function formatIssue(issue: z.core.$ZodIssue | undefined, prefix: string): string {
  if (issue === undefined) return "invalid";
  const path = [prefix, ...issue.path.map(String)].filter((p) => p !== "").join(".");
  const message = issue.message === "Invalid input" || issue.code === "unrecognized_keys" ? describe(issue) : issue.message;
  return path === "" ? message : `${path}: ${message}`;
}
