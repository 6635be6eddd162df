/**
 * Reads and checks the Lambda environment once, at module scope, with messages that name
 * the variable.
 */

import { parseTopology, type Topology } from "../app/topology.js";
import type { Rule } from "../core/rules.js";
import { DynamoBucketStore, makeDynamoClient } from "./dynamodb/store.js";
import { rulesFromYaml } from "./rules-file.js";

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
 * - `TOKENBANK_RULES_YAML`: the rules file's content (optional; no rules when absent).
 * - `DYNAMODB_ENDPOINT`: a custom endpoint (DynamoDB Local only).
 * - `TOKENBANK_REGIONS`: every serving region, comma-separated (default: this one).
 * - `TOKENBANK_REGION_WEIGHTS`: initial-split weights (default: equal).
 */
export function readEnv(env: NodeJS.ProcessEnv = process.env): FunctionEnv {
  return {
    tableName: required(env, "TOKENBANK_TABLE"),
    region: required(env, "AWS_REGION"),
    endpoint: env.DYNAMODB_ENDPOINT || undefined,
    rules: env.TOKENBANK_RULES_YAML ? rulesFromYaml(env.TOKENBANK_RULES_YAML, "TOKENBANK_RULES_YAML") : [],
    regions: env.TOKENBANK_REGIONS || required(env, "AWS_REGION"),
    weights: env.TOKENBANK_REGION_WEIGHTS || undefined,
  };
}

/** The real store for an environment. */
export function storeFor(env: FunctionEnv): DynamoBucketStore {
  return new DynamoBucketStore({
    client: makeDynamoClient({ region: env.region, endpoint: env.endpoint }),
    tableName: env.tableName,
    region: env.region,
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
