/**
 * Reads and checks the Lambda environment once, at module scope, with messages that name
 * the variable.
 */

import type { Rule } from "../core/rules.js";
import { DynamoBucketStore, makeDynamoClient } from "./dynamodb/store.js";
import { rulesFromYaml } from "./rules-file.js";

/** The environment every function reads. */
export interface FunctionEnv {
  readonly tableName: string;
  readonly region: string;
  readonly endpoint: string | undefined;
  readonly rules: Rule[];
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
 */
export function readEnv(env: NodeJS.ProcessEnv = process.env): FunctionEnv {
  return {
    tableName: required(env, "TOKENBANK_TABLE"),
    region: required(env, "AWS_REGION"),
    endpoint: env.DYNAMODB_ENDPOINT || undefined,
    rules: env.TOKENBANK_RULES_YAML ? rulesFromYaml(env.TOKENBANK_RULES_YAML, "TOKENBANK_RULES_YAML") : [],
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
