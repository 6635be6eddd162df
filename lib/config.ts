/**
 * Deployment configuration: read from CDK context (`cdk.json` or `-c name=value`), validated
 * once with messages that name the bad value.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { rulesYamlToJson } from "../lambda/adapters/rules-file.js";

/** A validated deployment configuration. */
export interface TokenbankConfig {
  /** Regions that serve traffic; the first holds the table's primary (its stack owns the global table). */
  readonly regions: readonly string[];
  /** DynamoDB table name, the same in every region. */
  readonly tableName: string;
  /** The rules file as JSON (validated), passed to the functions as `TOKENBANK_RULES_JSON`. */
  readonly rulesJson: string;
  /** Where the rules came from, for messages. */
  readonly rulesFile: string;
  /** CloudWatch log retention, days. */
  readonly logRetentionDays: number;
  /** Keep the table on stack deletion and refuse deletes. */
  readonly deletionProtection: boolean;
  /** A peer silent this long puts a region in local-only (degraded) mode, ms. */
  readonly degradedAfterMs: number;
  /** Borrow share directly from peers when a slice runs dry. */
  readonly borrow: boolean;
  /** Every DynamoDB call's timeout in the functions, ms (well inside their 5 s timeout). */
  readonly dynamoTimeoutMs: number;
  /** A hot key's lease life in the rate function, ms (0: no leases). Context `leaseMs`, default 100. */
  readonly leaseMs: number;
  /** Alarm thresholds. */
  readonly alarms: { readonly syncLagMs: number; readonly deniedRatio: number; readonly iteratorAgeMs: number };
  /** Where alarms are emailed (optional). */
  readonly alarmEmail: string | undefined;
  /** Authorization of `/rate` and `/status`: IAM (default), a JWT authorizer, or none. */
  readonly dataAuth:
    | { readonly kind: "iam" }
    | { readonly kind: "none" }
    | { readonly kind: "jwt"; readonly issuer: string; readonly audience: string[] };
}

const REGION = /^[a-z]{2}(-gov)?-[a-z]+-\d$/;
const TABLE = /^[A-Za-z0-9_.-]{3,255}$/;
/** Log retention values CloudWatch accepts. */
export const RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

/** Reads a context value as a string (CLI `-c` values are strings; cdk.json values may be typed). */
type Context = (key: string) => unknown;

/**
 * Validates the configuration from CDK context.
 * @throws {Error} naming the context key and the bad value
 */
export function loadConfig(context: Context, root = process.cwd()): TokenbankConfig {
  const rawRegions = context("regions") ?? "us-east-1,eu-central-1";
  const regions = (Array.isArray(rawRegions) ? rawRegions.map(String) : String(rawRegions).split(","))
    .map((r) => r.trim())
    .filter((r) => r !== "");
  if (regions.length === 0) throw new Error('context "regions": give at least one region, e.g. -c regions=us-east-1,eu-central-1');
  for (const region of regions) {
    if (!REGION.test(region)) throw new Error(`context "regions": "${region}" is not an AWS region name (like us-east-1)`);
  }
  if (new Set(regions).size !== regions.length) throw new Error(`context "regions": "${regions.join(",")}" lists a region twice`);

  const tableName = String(context("tableName") ?? "tokenbank");
  if (!TABLE.test(tableName)) throw new Error(`context "tableName": "${tableName}" is not a valid DynamoDB table name`);

  const rulesFile = String(context("rulesFile") ?? "buckets.yaml");
  let rulesYaml: string;
  try {
    rulesYaml = readFileSync(resolve(root, rulesFile), "utf8");
  } catch {
    throw new Error(`context "rulesFile": cannot read "${rulesFile}"`);
  }
  const rulesJson = rulesYamlToJson(rulesYaml, rulesFile); // throws a message naming the rule and the field
  if (Buffer.byteLength(rulesJson) > 3500) {
    throw new Error(
      `context "rulesFile": "${rulesFile}" is ${Buffer.byteLength(rulesJson)} bytes as JSON; Lambda environment allows about 3500`,
    );
  }

  const logRetentionDays = Number(context("logRetentionDays") ?? 30);
  if (!RETENTION_DAYS.includes(logRetentionDays)) {
    throw new Error(`context "logRetentionDays": ${String(context("logRetentionDays"))} is not one of ${RETENTION_DAYS.join(", ")}`);
  }
  const protection = String(context("deletionProtection") ?? "true");
  if (protection !== "true" && protection !== "false")
    throw new Error(`context "deletionProtection": "${protection}" must be true or false`);

  const degradedAfterMs = Number(context("degradedAfterMs") ?? 180_000);
  if (!Number.isInteger(degradedAfterMs) || degradedAfterMs < 60_000) {
    throw new Error(
      `context "degradedAfterMs": ${String(context("degradedAfterMs"))} must be a whole number of ms ≥ 60000 (heartbeats run every minute)`,
    );
  }
  const borrow = String(context("borrow") ?? "true");
  if (borrow !== "true" && borrow !== "false") throw new Error(`context "borrow": "${borrow}" must be true or false`);
  const num = (name: string, fallback: number, min: number, max: number) => {
    const raw = context(name);
    const value = Number(raw ?? fallback);
    if (!Number.isFinite(value) || value < min || value > max)
      throw new Error(`context "${name}": ${String(raw)} must be a number between ${min} and ${max}`);
    return value;
  };
  const alarms = {
    syncLagMs: num("alarmSyncLagMs", 5000, 1, 3_600_000),
    deniedRatio: num("alarmDeniedRatio", 0.5, 0, 1),
    iteratorAgeMs: num("alarmIteratorAgeMs", 60_000, 1, 86_400_000),
  };
  const dynamoTimeoutMs = num("dynamoTimeoutMs", 1000, 50, 3000);
  const leaseMs = num("leaseMs", 100, 0, 1000);
  if (!Number.isInteger(leaseMs)) throw new Error(`context "leaseMs": ${leaseMs} must be a whole number of ms`);
  if (!Number.isInteger(dynamoTimeoutMs)) throw new Error(`context "dynamoTimeoutMs": ${dynamoTimeoutMs} must be a whole number of ms`);
  const alarmEmail = context("alarmEmail") === undefined ? undefined : String(context("alarmEmail"));
  if (alarmEmail !== undefined && !/^[^@\s]+@[^@\s]+$/.test(alarmEmail))
    throw new Error(`context "alarmEmail": "${alarmEmail}" is not an email address`);
  const authKind = String(context("dataAuthorizer") ?? "iam");
  let dataAuth: TokenbankConfig["dataAuth"];
  if (authKind === "iam" || authKind === "none") dataAuth = { kind: authKind };
  else if (authKind === "jwt") {
    const issuer = String(context("jwtIssuer") ?? "");
    const audience = String(context("jwtAudience") ?? "")
      .split(",")
      .map((a) => a.trim())
      .filter((a) => a !== "");
    if (!/^https:\/\//.test(issuer)) throw new Error(`context "jwtIssuer": "${issuer}" must be an https URL when dataAuthorizer is jwt`);
    if (audience.length === 0) throw new Error('context "jwtAudience": give at least one audience when dataAuthorizer is jwt');
    dataAuth = { kind: "jwt", issuer, audience };
  } else throw new Error(`context "dataAuthorizer": "${authKind}" must be iam, jwt or none`);
  return {
    alarms,
    alarmEmail,
    dataAuth,
    regions,
    tableName,
    rulesJson,
    rulesFile,
    logRetentionDays,
    deletionProtection: protection === "true",
    degradedAfterMs,
    borrow: borrow === "true",
    dynamoTimeoutMs,
    leaseMs,
  };
}
