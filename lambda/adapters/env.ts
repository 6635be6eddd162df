/**
 * Reads and checks the Lambda environment once, at module scope, with messages that name
 * the variable.
 */

import { parseTopology, type Topology } from "../app/topology.js";
import { ValidationError } from "../core/errors.js";
import { parseRules, type Rule } from "../core/rules.js";
import { DEFAULT_REQUEST_TIMEOUT_MS, DynamoBucketStore, makeDynamoClient } from "./dynamodb/store.js";

/** The environment every function reads. */
export interface FunctionEnv {
  readonly tableName: string;
  readonly region: string;
  readonly endpoint: string | undefined;
  readonly rules: Rule[];
  /** `TOKENBANK_REGIONS` (default: this region alone). */
  readonly regions: string;
  /** `TOKENBANK_REGION_WEIGHTS`, e.g. `us-east-1=2,eu-central-1=1`. */
  readonly weights: string | undefined;
  /** `TOKENBANK_DYNAMODB_TIMEOUT_MS`: every DynamoDB call's timeout (default 1000). */
  readonly dynamoTimeoutMs: number;
  /** `TOKENBANK_LEASE_MS`: a hot key's lease life (default 100; 0: no leases). */
  readonly leaseMs: number;
  /** `TOKENBANK_JOB_BUDGET_MS`: a scheduled job's time budget per run (default 40000). */
  readonly jobBudgetMs: number;
}

function required(env: NodeJS.ProcessEnv, name: string): string {
  const value = env[name];
  if (value === undefined || value.trim() === "") throw new Error(`environment variable ${name} is required`);
  return value;
}

/**
 * Parses the environment.
 * - `TOKENBANK_TABLE`: the DynamoDB table name (required).
 * - `AWS_REGION`: this region (set by Lambda).
 * - `TOKENBANK_RULES_JSON`: the rules file as JSON (optional; no rules when absent). The CDK
 *   converts `buckets.yaml` at synth time, so the functions need no YAML parser.
 * - `DYNAMODB_ENDPOINT`: a custom endpoint (DynamoDB Local only).
 * - `TOKENBANK_REGIONS`: every serving region, comma-separated (default: this one).
 * - `TOKENBANK_REGION_WEIGHTS`: initial-split weights (default: equal).
 * - `TOKENBANK_DYNAMODB_TIMEOUT_MS`: per-call DynamoDB timeout, 50…30000 (default 1000). A call
 *   that takes longer fails (503, or the bucket's fail-open), well inside the function timeout.
 * - `TOKENBANK_LEASE_MS`: a lease's life, 0…1000 ms (default 100; 0 turns leases off): how long
 *   of its demand an instance may take ahead on a hot key (docs/architecture.md, Leases).
 * - `TOKENBANK_JOB_BUDGET_MS`: how long a reconciler or forecaster run may scan, 1000…600000 ms
 *   (default 40000), well inside the function timeout; the next run resumes from its checkpoint.
 */
export function readEnv(env: NodeJS.ProcessEnv = process.env): FunctionEnv {
  return {
    tableName: required(env, "TOKENBANK_TABLE"),
    region: required(env, "AWS_REGION"),
    endpoint: env.DYNAMODB_ENDPOINT || undefined,
    rules: rulesOf(env),
    regions: env.TOKENBANK_REGIONS || required(env, "AWS_REGION"),
    weights: env.TOKENBANK_REGION_WEIGHTS || undefined,
    dynamoTimeoutMs: intVar(env, "TOKENBANK_DYNAMODB_TIMEOUT_MS", DEFAULT_REQUEST_TIMEOUT_MS, 50, 30_000),
    leaseMs: intVar(env, "TOKENBANK_LEASE_MS", 100, 0, 1000),
    jobBudgetMs: intVar(env, "TOKENBANK_JOB_BUDGET_MS", 40_000, 1000, 600_000),
  };
}

function intVar(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`environment variable ${name} must be a whole number from ${min} to ${max}, not "${raw}"`);
  }
  return value;
}

function rulesOf(env: NodeJS.ProcessEnv): Rule[] {
  if (env.TOKENBANK_RULES_YAML) {
    throw new Error("TOKENBANK_RULES_YAML is not read; give the rules as TOKENBANK_RULES_JSON (the CDK app converts buckets.yaml)");
  }
  const text = env.TOKENBANK_RULES_JSON;
  if (!text) return [];
  let content: unknown;
  try {
    content = JSON.parse(text);
  } catch (error) {
    throw new ValidationError("config.invalid_rules", `TOKENBANK_RULES_JSON: not valid JSON: ${(error as Error).message}`);
  }
  return parseRules(content, "TOKENBANK_RULES_JSON");
}

/** The real store for an environment. */
export function storeFor(env: FunctionEnv): DynamoBucketStore {
  return new DynamoBucketStore({
    client: makeDynamoClient({ region: env.region, endpoint: env.endpoint, requestTimeoutMs: env.dynamoTimeoutMs }),
    tableName: env.tableName,
    region: env.region,
    callBudgetMs: env.dynamoTimeoutMs,
  });
}

/** The topology for an environment. @throws naming TOKENBANK_REGIONS when it omits this region */
export function topologyFor(env: FunctionEnv): Topology {
  try {
    return parseTopology(env.region, env.regions, env.weights);
  } catch (error) {
    throw new Error(`TOKENBANK_REGIONS / TOKENBANK_REGION_WEIGHTS: ${(error as Error).message}`);
  }
}
