import { ArnFormat, Stack, type StackProps, Validations } from "aws-cdk-lib";
import { ArnPrincipal, Effect, PolicyStatement, Role } from "aws-cdk-lib/aws-iam";
import type { RetentionDays } from "aws-cdk-lib/aws-logs";
import type { Construct } from "constructs";
import { FUNCTION_STORE_ACCESS, type TableFunction } from "../../lambda/access.js";
import { actionsFor } from "../../lambda/adapters/dynamodb/actions.js";
import { callerRoleName, PEER_CALLERS, transferFunctionName } from "../../lambda/names.js";
import type { TokenbankConfig } from "../config.js";
import { HandlerFunction } from "../constructs/handler-function.js";
import { Monitoring } from "../constructs/monitoring.js";
import { RateApi } from "../constructs/rate-api.js";
import { ScheduledJobs } from "../constructs/scheduled-jobs.js";
import { StreamMerge } from "../constructs/stream-merge.js";

/** Props of {@link RegionStack}. */
export interface RegionStackProps extends StackProps {
  readonly config: TokenbankConfig;
}

/** The stateless stack of one region: the functions and the HTTP API over that region's replica. */
export class RegionStack extends Stack {
  readonly api: RateApi;
  readonly merge: StreamMerge;
  readonly monitoring: Monitoring;
  readonly jobs: ScheduledJobs;

  constructor(scope: Construct, id: string, props: RegionStackProps) {
    super(scope, id, props);
    const { config } = props;
    const environment = {
      TOKENBANK_TABLE: config.tableName,
      TOKENBANK_RULES_JSON: config.rulesJson,
      TOKENBANK_REGIONS: config.regions.join(","),
      TOKENBANK_DEGRADED_AFTER_MS: String(config.degradedAfterMs),
      TOKENBANK_BORROW: config.borrow ? "on" : "off",
      TOKENBANK_DYNAMODB_TIMEOUT_MS: String(config.dynamoTimeoutMs),
      TOKENBANK_LEASE_MS: String(config.leaseMs),
    };
    const logRetention = config.logRetentionDays as RetentionDays;
    const make = (name: string, entry: string) => new HandlerFunction(this, name, { entry, environment, logRetention }).fn;
    // The roles of the functions that call peers are made by the data stack (CallerRoles), so
    // that peers can name them; their permissions are granted here, on this region's resources.
    const roleOf = (fn: (typeof PEER_CALLERS)[number], id: string) =>
      Role.fromRoleName(this, id, callerRoleName(fn, this.region), { mutable: true });
    const rate = new HandlerFunction(this, "RateFunction", { entry: "rate", environment, logRetention, role: roleOf("rate", "RateRole") })
      .fn;
    const status = make("StatusFunction", "status");
    const buckets = make("BucketsFunction", "buckets");
    const health = new HandlerFunction(this, "HealthFunction", { entry: "health", environment: {}, logRetention, memorySize: 128 }).fn;
    const merge = new HandlerFunction(this, "StreamMergeFunction", {
      entry: "stream-merge",
      environment,
      logRetention,
      role: roleOf("merge", "MergeRole"),
    }).fn;
    // Peers invoke it by name to borrow: the name is fixed per region.
    const transfer = new HandlerFunction(this, "TransferFunction", {
      entry: "transfer",
      environment,
      logRetention,
      functionName: transferFunctionName(this.region),
      role: roleOf("transfer", "TransferRole"),
    }).fn;
    const heartbeat = new HandlerFunction(this, "HeartbeatFunction", { entry: "heartbeat", environment, logRetention, memorySize: 128 }).fn;

    // Least privilege, on this region's replica only, from one map: the store methods each
    // function uses (lambda/access.ts) and the actions each method sends
    // (lambda/adapters/dynamodb/actions.ts), both checked by tests.
    const tableArn = this.formatArn({ service: "dynamodb", resource: "table", resourceName: config.tableName });
    const grantTable = (fn: { addToRolePolicy(statement: PolicyStatement): void }, name: TableFunction) =>
      fn.addToRolePolicy(
        new PolicyStatement({ effect: Effect.ALLOW, actions: actionsFor(FUNCTION_STORE_ACCESS[name]), resources: [tableArn] }),
      );
    if (config.borrow) {
      const peers = config.regions.filter((r) => r !== this.region);
      // The transfer function's resource policy: exactly the peers' caller roles (made by the
      // data stack, so they exist on this region's first deployment). Cross-account, nothing else
      // can invoke it; in one account, see docs/architecture.md (Least privilege).
      const prefix: Record<(typeof PEER_CALLERS)[number], string> = { rate: "PeerRate", merge: "PeerMerge", transfer: "PeerTransfer" };
      for (const peer of peers) {
        for (const fn of PEER_CALLERS) {
          transfer.addPermission(`${prefix[fn]}-${peer}`, {
            principal: new ArnPrincipal(
              this.formatArn({ service: "iam", region: "", resource: "role", resourceName: callerRoleName(fn, peer) }),
            ),
            action: "lambda:InvokeFunction",
          });
        }
      }
      // Borrow (rate), offer (merge) and collect (transfer): invoke the peers' transfer functions, and only those.
      const peerTransfers = peers.map((r) =>
        this.formatArn({
          service: "lambda",
          region: r,
          resource: "function",
          resourceName: transferFunctionName(r),
          arnFormat: ArnFormat.COLON_RESOURCE_NAME,
        }),
      );
      for (const fn of [rate, merge, transfer]) {
        fn.addToRolePolicy(new PolicyStatement({ effect: Effect.ALLOW, actions: ["lambda:InvokeFunction"], resources: peerTransfers }));
      }
    }
    this.merge = new StreamMerge(this, "StreamMerge", { fn: merge, tableName: config.tableName, region: this.region });
    // The scheduled jobs run budgeted, resumable passes: 40 s of work within a 60 s timeout.
    const jobs = { environment: { ...environment, TOKENBANK_JOB_BUDGET_MS: "40000" }, logRetention, timeoutSeconds: 60 };
    const reconcileFn = new HandlerFunction(this, "ReconcileFunction", { entry: "reconcile", ...jobs }).fn;
    const forecastFn = new HandlerFunction(this, "ForecastFunction", { entry: "forecast", ...jobs }).fn;
    const tableFunctions = { rate, status, buckets, merge, transfer, heartbeat, reconcile: reconcileFn, forecast: forecastFn };
    for (const [name, fn] of Object.entries(tableFunctions)) grantTable(fn, name as TableFunction);
    this.jobs = new ScheduledJobs(this, "Jobs", { heartbeat, reconcile: reconcileFn, forecast: forecastFn });
    this.monitoring = new Monitoring(this, "Monitoring", {
      region: this.region,
      peers: config.regions.filter((r) => r !== this.region),
      tableName: config.tableName,
      functions: { rate, status, buckets, health, merge, heartbeat, transfer, reconcile: reconcileFn, forecast: forecastFn },
      mergeFunction: merge,
      deadLetterQueue: this.merge.deadLetterQueue,
      thresholds: config.alarms,
      alarmEmail: config.alarmEmail,
    });

    this.api = new RateApi(this, "Http", { rate, status, buckets, health, dataAuth: config.dataAuth, logRetention });
    Validations.of(this).acknowledge({
      id: "AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
      reason:
        "AWSLambdaBasicExecutionRole (our functions and CDK's custom-resource provider) only lets a function write its own CloudWatch logs; table, stream, queue and invoke permissions are inline and least-privilege",
    });
    Validations.of(this).acknowledge({
      id: "AwsSolutions::AwsSolutions-L1",
      reason:
        "The functions are pinned to nodejs22.x by the deployment requirements (the bundles are built for it); the custom-resource provider's runtime is managed by CDK",
    });
  }
}
