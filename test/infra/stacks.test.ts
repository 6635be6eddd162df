/** Fine-grained assertions on the synthesized stacks (no bundling: placeholder assets). */
import { App } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import { describe, expect, it } from "vitest";
import { FUNCTION_STORE_ACCESS, type TableFunction } from "../../lambda/access.js";
import { actionsFor } from "../../lambda/adapters/dynamodb/actions.js";
import { loadConfig } from "../../lib/config.js";
import { DataStack } from "../../lib/stacks/data-stack.js";
import { RegionStack } from "../../lib/stacks/region-stack.js";

const ctx = (values: Record<string, unknown>) => (key: string) => values[key];
const config = loadConfig(ctx({ regions: "us-east-1,eu-central-1,ap-southeast-2", deletionProtection: "true" }));

function synth() {
  const app = new App({ context: { "aws:cdk:bundling-stacks": [] } });
  const data = new DataStack(app, "Data", { env: { region: "us-east-1" }, config });
  const region = new RegionStack(app, "Region", { env: { region: "eu-central-1" }, config });
  return { data: Template.fromStack(data), region: Template.fromStack(region) };
}
const { data, region } = synth();

describe("DataStack", () => {
  it("creates one global table with streams, TTL, PITR, deletion protection and a replica per region", () => {
    data.resourceCountIs("AWS::DynamoDB::GlobalTable", 1);
    data.hasResourceProperties("AWS::DynamoDB::GlobalTable", {
      TableName: "tokenbank",
      KeySchema: [
        { AttributeName: "pk", KeyType: "HASH" },
        { AttributeName: "sk", KeyType: "RANGE" },
      ],
      BillingMode: "PAY_PER_REQUEST",
      StreamSpecification: { StreamViewType: "NEW_AND_OLD_IMAGES" },
      TimeToLiveSpecification: { AttributeName: "exp", Enabled: true },
    });
    for (const region of ["us-east-1", "eu-central-1", "ap-southeast-2"]) {
      data.hasResourceProperties("AWS::DynamoDB::GlobalTable", {
        Replicas: Match.arrayWith([
          Match.objectLike({
            Region: region,
            DeletionProtectionEnabled: true,
            PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
          }),
        ]),
      });
    }
    data.hasResource("AWS::DynamoDB::GlobalTable", { DeletionPolicy: "Retain", UpdateReplacePolicy: "Retain" });
  });

  it("makes every region's peer-caller roles (rate, merge, transfer), before any region stack: trusted by Lambda, with the logs policy only", () => {
    data.resourceCountIs("AWS::IAM::Role", 9);
    for (const region of ["us-east-1", "eu-central-1", "ap-southeast-2"]) {
      for (const fn of ["rate", "merge", "transfer"]) {
        data.hasResourceProperties("AWS::IAM::Role", {
          RoleName: `tokenbank-${fn}-${region}`,
          AssumeRolePolicyDocument: {
            Statement: [Match.objectLike({ Action: "sts:AssumeRole", Effect: "Allow", Principal: { Service: "lambda.amazonaws.com" } })],
          },
          ManagedPolicyArns: [{ "Fn::Join": ["", Match.arrayWith([":iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"])] }],
        });
      }
    }
    data.resourceCountIs("AWS::IAM::Policy", 0);
  });
});

describe("RegionStack", () => {
  it("runs every handler on nodejs22.x, arm64, with the table and rules in its environment", () => {
    region.resourcePropertiesCountIs("AWS::Lambda::Function", { Runtime: "nodejs22.x", Architectures: ["arm64"] }, 9);
    region.hasResourceProperties("AWS::Lambda::Function", {
      Environment: {
        Variables: Match.objectLike({ TOKENBANK_TABLE: "tokenbank", TOKENBANK_RULES_JSON: Match.stringLikeRegexp("per-agent") }),
      },
      LoggingConfig: { LogFormat: "JSON", LogGroup: Match.anyValue() },
    });
  });

  it("gives the functions the lease life (context leaseMs, default 100 ms; 0 turns leases off)", () => {
    region.hasResourceProperties("AWS::Lambda::Function", {
      Environment: { Variables: Match.objectLike({ TOKENBANK_LEASE_MS: "100" }) },
    });
    expect(loadConfig(ctx({ regions: "us-east-1", leaseMs: "0" })).leaseMs).toBe(0);
    expect(() => loadConfig(ctx({ regions: "us-east-1", leaseMs: "2.5" }))).toThrow(/leaseMs/);
    expect(() => loadConfig(ctx({ regions: "us-east-1", leaseMs: "5000" }))).toThrow(/leaseMs/);
  });

  it("routes POST /rate, GET /status/{key}, GET /health and the admin methods", () => {
    for (const key of [
      "POST /rate",
      "GET /status/{key}",
      "GET /health",
      "GET /openapi.json",
      "GET /buckets/{key}/history",
      "GET /buckets/{key}",
      "PUT /buckets/{key}",
      "PATCH /buckets/{key}",
      "DELETE /buckets/{key}",
    ]) {
      region.hasResourceProperties("AWS::ApiGatewayV2::Route", { RouteKey: key });
    }
  });

  it("requires IAM on admin and data routes, not on /health", () => {
    for (const key of ["PUT /buckets/{key}", "DELETE /buckets/{key}", "GET /buckets/{key}/history", "POST /rate", "GET /status/{key}"]) {
      region.hasResourceProperties("AWS::ApiGatewayV2::Route", { RouteKey: key, AuthorizationType: "AWS_IAM" });
    }
    region.hasResourceProperties("AWS::ApiGatewayV2::Route", { RouteKey: "GET /health", AuthorizationType: "NONE" });
  });

  it("grants each function only named DynamoDB actions on its region's table", () => {
    const policies = region.findResources("AWS::IAM::Policy");
    const statements = Object.values(policies).flatMap(
      (p) => (p as { Properties: { PolicyDocument: { Statement: { Action: string | string[] }[] } } }).Properties.PolicyDocument.Statement,
    );
    const actions = statements.flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action])).filter((a) => a.startsWith("dynamodb:"));
    expect(actions.length).toBeGreaterThan(0);
    expect(actions.filter((a) => a.includes("*"))).toEqual([]);
  });

  it("builds each function's table policy from the one access map: exactly the actions its store methods send", () => {
    const constructs: Record<TableFunction, string> = {
      rate: "RateFunction",
      status: "StatusFunction",
      buckets: "BucketsFunction",
      merge: "StreamMergeFunction",
      transfer: "TransferFunction",
      heartbeat: "HeartbeatFunction",
      reconcile: "ReconcileFunction",
      forecast: "ForecastFunction",
    };
    const functions = Object.entries(region.findResources("AWS::Lambda::Function")) as [
      string,
      { Properties: { Role: { "Fn::GetAtt": [string] } | { "Fn::Join": [string, unknown[]] } } },
    ][];
    const policies = Object.values(region.findResources("AWS::IAM::Policy")) as {
      Properties: { Roles: ({ Ref: string } | string)[]; PolicyDocument: { Statement: { Action: string | string[] }[] } };
    }[];
    // A role made in this stack is referenced by logical id; one made by the data stack (the rate role) by name.
    const roleOf = (fn: (typeof functions)[number][1]): { Ref: string } | string =>
      "Fn::GetAtt" in fn.Properties.Role
        ? { Ref: fn.Properties.Role["Fn::GetAtt"][0] }
        : String(fn.Properties.Role["Fn::Join"][1].at(-1)).replace(/^:role\//, "");
    const streamActions = new Set(["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"]);
    for (const [name, id] of Object.entries(constructs) as [TableFunction, string][]) {
      const fn = functions.find(([logicalId]) => logicalId.startsWith(id) && !logicalId.startsWith(`${id}Log`));
      expect(fn, id).toBeDefined();
      const role = JSON.stringify(roleOf((fn as (typeof functions)[number])[1]));
      const actions = policies
        .filter((p) => p.Properties.Roles.some((r) => JSON.stringify(r) === role))
        .flatMap((p) => p.Properties.PolicyDocument.Statement)
        .flatMap((st) => (Array.isArray(st.Action) ? st.Action : [st.Action]))
        .filter((a) => a.startsWith("dynamodb:") && !streamActions.has(a));
      expect({ name, actions: [...new Set(actions)].sort() }).toEqual({ name, actions: actionsFor(FUNCTION_STORE_ACCESS[name]) });
    }
    // The two the audit found missing: the history route queries; a lender that never served a key creates its row.
    expect(actionsFor(FUNCTION_STORE_ACCESS.buckets)).toContain("dynamodb:Query");
    expect(actionsFor(FUNCTION_STORE_ACCESS.transfer)).toContain("dynamodb:PutItem");
    expect(actionsFor(FUNCTION_STORE_ACCESS.status)).not.toContain("dynamodb:PutItem"); // the status function only reads
  });
});

describe("RegionStack: stream merge and schedules", () => {
  it("maps the replica's stream to the merge function with batching, bisect, partial-batch responses and a DLQ", () => {
    region.hasResourceProperties("AWS::Lambda::EventSourceMapping", {
      EventSourceArn: { "Fn::GetAtt": [Match.stringLikeRegexp("StreamArnLookup"), "Table.LatestStreamArn"] },
      StartingPosition: "TRIM_HORIZON",
      BatchSize: 100,
      BisectBatchOnFunctionError: true,
      FunctionResponseTypes: ["ReportBatchItemFailures"],
      MaximumRetryAttempts: 10,
      DestinationConfig: { OnFailure: { Destination: { "Fn::GetAtt": [Match.stringLikeRegexp("DeadLetters"), "Arn"] } } },
    });
    region.hasResourceProperties("AWS::SQS::Queue", { SqsManagedSseEnabled: true, MessageRetentionPeriod: 1_209_600 });
  });

  it("filters out the region's own slice rows and heartbeats", () => {
    const mapping = Object.values(region.findResources("AWS::Lambda::EventSourceMapping"))[0] as {
      Properties: { FilterCriteria: { Filters: { Pattern: string }[] } };
    };
    const patterns = mapping.Properties.FilterCriteria.Filters.map((f) => JSON.parse(f.Pattern));
    expect(patterns).toEqual([
      { dynamodb: { Keys: { sk: { S: ["config"] } } } },
      { dynamodb: { Keys: { sk: { S: [{ prefix: "forecast#" }] } } } },
      { dynamodb: { Keys: { sk: { S: [{ prefix: "slice#" }] } }, NewImage: { reg: { S: [{ "anything-but": ["eu-central-1"] }] } } } },
    ]);
  });

  it("looks up the replica's stream with a read-only DescribeTable call", () => {
    region.hasResourceProperties("Custom::AWS", { Create: Match.stringLikeRegexp('"action":"describeTable"') });
  });

  it("names the transfer function per region and lets the callers invoke only the peers' ones", () => {
    region.hasResourceProperties("AWS::Lambda::Function", { FunctionName: "tokenbank-transfer-eu-central-1" });
    const policies = Object.values(region.findResources("AWS::IAM::Policy")) as {
      Properties: { PolicyDocument: { Statement: { Action: string | string[]; Resource: unknown }[] } };
    }[];
    const invoke = policies.flatMap((p) => p.Properties.PolicyDocument.Statement).filter((st) => st.Action === "lambda:InvokeFunction");
    const targets = JSON.stringify(invoke.map((st) => st.Resource));
    expect(targets).toContain("tokenbank-transfer-us-east-1");
    expect(targets).toContain("tokenbank-transfer-ap-southeast-2");
    expect(targets).not.toContain("tokenbank-transfer-eu-central-1");
    expect(targets).not.toContain('"*"');
  });

  it("admits exactly the peers' caller roles to the transfer function (resource policy), and runs the callers on their region's roles", () => {
    const permissions = Object.values(region.findResources("AWS::Lambda::Permission")) as {
      Properties: { Action: string; FunctionName: { "Fn::GetAtt": [string, string] }; Principal: unknown };
    }[];
    const onTransfer = permissions.filter((p) => p.Properties.FunctionName["Fn::GetAtt"]?.[0].startsWith("TransferFunction"));
    expect(onTransfer.map((p) => p.Properties.Action)).toEqual(new Array(6).fill("lambda:InvokeFunction"));
    const principals = onTransfer.map((p) => JSON.stringify(p.Properties.Principal).replace(/.*:role\/([^"]+)".*/, "$1")).sort();
    expect(principals).toEqual([
      "tokenbank-merge-ap-southeast-2",
      "tokenbank-merge-us-east-1",
      "tokenbank-rate-ap-southeast-2",
      "tokenbank-rate-us-east-1",
      "tokenbank-transfer-ap-southeast-2",
      "tokenbank-transfer-us-east-1",
    ]);
    // The callers' roles are the ones their peers name (made by the data stack), not generated ones,
    // and each may invoke the peers' transfer functions.
    for (const fn of ["rate", "merge", "transfer"]) {
      region.hasResourceProperties("AWS::Lambda::Function", {
        Environment: { Variables: Match.objectLike({ TOKENBANK_BORROW: "on" }) },
        Role: { "Fn::Join": ["", Match.arrayWith([`:role/tokenbank-${fn}-eu-central-1`])] },
      });
      region.hasResourceProperties("AWS::IAM::Policy", {
        Roles: [`tokenbank-${fn}-eu-central-1`],
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Action: "lambda:InvokeFunction", Resource: Match.arrayWith([Match.objectLike({})]) }),
          ]),
        },
      });
    }
    // Without borrowing, no peer calls it, and nothing may.
    const app = new App({ context: { "aws:cdk:bundling-stacks": [] } });
    const closed = new RegionStack(app, "NoBorrow", {
      env: { region: "eu-central-1" },
      config: loadConfig(ctx({ regions: "us-east-1,eu-central-1", borrow: "false" })),
    });
    const closedPermissions = Object.values(Template.fromStack(closed).findResources("AWS::Lambda::Permission")) as typeof permissions;
    expect(closedPermissions.filter((p) => p.Properties.FunctionName["Fn::GetAtt"]?.[0].startsWith("TransferFunction"))).toEqual([]);
  });

  it("schedules the reconciler and the forecaster, and routes tokenbank.forecast events from the bus", () => {
    region.hasResourceProperties("AWS::Events::Rule", {
      ScheduleExpression: "rate(5 minutes)",
      Description: Match.stringLikeRegexp("reconcile"),
    });
    region.hasResourceProperties("AWS::Events::Rule", {
      ScheduleExpression: "rate(1 minute)",
      Description: Match.stringLikeRegexp("forecaster"),
    });
    region.hasResourceProperties("AWS::Events::EventBus", { Name: "tokenbank" });
    region.hasResourceProperties("AWS::Events::Rule", {
      EventBusName: { Ref: Match.stringLikeRegexp("JobsBus") },
      EventPattern: { "detail-type": ["tokenbank.forecast"] },
      Targets: [Match.objectLike({ Arn: { "Fn::GetAtt": [Match.stringLikeRegexp("ForecastFunction"), "Arn"] } })],
    });
  });

  it("writes a heartbeat every minute", () => {
    region.hasResourceProperties("AWS::Events::Rule", { ScheduleExpression: "rate(1 minute)", State: "ENABLED" });
  });
});

describe("RegionStack: observability", () => {
  const alarm = (namePart: string, props: Record<string, unknown>) =>
    region.hasResourceProperties("AWS::CloudWatch::Alarm", { AlarmDescription: Match.stringLikeRegexp(namePart), ...props });

  it("alarms on replication latency to each peer and on our own merge lag", () => {
    for (const peer of ["us-east-1", "ap-southeast-2"]) {
      region.hasResourceProperties("AWS::CloudWatch::Alarm", {
        MetricName: "ReplicationLatency",
        Namespace: "AWS/DynamoDB",
        Threshold: 5000,
        Dimensions: Match.arrayWith([{ Name: "ReceivingRegion", Value: peer }]),
        AlarmActions: [Match.objectLike({ Ref: Match.stringLikeRegexp("MonitoringAlarms") })],
      });
    }
    alarm("merge handler later than 5000 ms", { MetricName: "MergeLagMs", Namespace: "tokenbank", Threshold: 5000 });
  });

  it("alarms on depletion spikes, iterator age, store errors, function errors and throttles, DynamoDB throttles and dead letters", () => {
    alarm("decisions denied", {
      Threshold: 0.5,
      Metrics: Match.arrayWith([Match.objectLike({ Expression: "IF(decisions > 0, denied / decisions, 0)" })]),
    });
    alarm("behind its stream", { MetricName: "IteratorAge", Threshold: 60000 });
    alarm("DynamoDB was unavailable", { MetricName: "StoreErrors", Threshold: 0 });
    for (const fn of ["rate", "status", "buckets", "health", "merge", "heartbeat", "transfer", "reconcile", "forecast"]) {
      alarm(`^${fn} function errors$`, { MetricName: "Errors", Threshold: 0 });
      alarm(`^${fn} function throttles$`, { MetricName: "Throttles", Threshold: 0 });
    }
    alarm("DynamoDB write throttling", { MetricName: "WriteThrottleEvents" });
    alarm("DynamoDB read throttling", { MetricName: "ReadThrottleEvents" });
    alarm("gave up on", { MetricName: "ApproximateNumberOfMessagesVisible" });
    region.hasResourceProperties("AWS::SNS::Topic", { DisplayName: "tokenbank alarms (eu-central-1)" });
  });

  it("alarms on invariant violations, on those the reconciler cannot repair, and on a rule reaching its bucket cap", () => {
    for (const name of ["InvariantViolations", "UnrepairedViolations", "BucketCapReached"]) {
      region.hasResourceProperties("AWS::CloudWatch::Alarm", {
        MetricName: name,
        Namespace: "tokenbank",
        Threshold: 0,
        ComparisonOperator: "GreaterThanThreshold",
        AlarmActions: Match.anyValue(),
      });
    }
  });

  it("has a dashboard and JSON access logs on the $default stage", () => {
    region.hasResourceProperties("AWS::CloudWatch::Dashboard", { DashboardName: "tokenbank-eu-central-1" });
    region.hasResourceProperties("AWS::ApiGatewayV2::Stage", {
      StageName: "$default",
      AutoDeploy: true,
      AccessLogSettings: { DestinationArn: Match.anyValue(), Format: Match.stringLikeRegexp("routeKey") },
    });
  });

  it("can put a JWT authorizer on the data routes instead of IAM", () => {
    const app = new App({ context: { "aws:cdk:bundling-stacks": [] } });
    const jwt = loadConfig(ctx({ dataAuthorizer: "jwt", jwtIssuer: "https://issuer.example.com", jwtAudience: "tokenbank" }));
    const t = Template.fromStack(new RegionStack(app, "Jwt", { env: { region: "us-east-1" }, config: jwt }));
    t.hasResourceProperties("AWS::ApiGatewayV2::Authorizer", {
      AuthorizerType: "JWT",
      JwtConfiguration: { Issuer: "https://issuer.example.com", Audience: ["tokenbank"] },
    });
    t.hasResourceProperties("AWS::ApiGatewayV2::Route", { RouteKey: "POST /rate", AuthorizationType: "JWT" });
    t.hasResourceProperties("AWS::ApiGatewayV2::Route", { RouteKey: "PUT /buckets/{key}", AuthorizationType: "AWS_IAM" });
  });
});

describe("loadConfig", () => {
  it.each([
    [{ regions: "us-east-1,mars-1" }, /"mars-1" is not an AWS region/],
    [{ regions: "us-east-1,us-east-1" }, /lists a region twice/],
    [{ regions: "" }, /at least one region/],
    [{ tableName: "x" }, /"x" is not a valid DynamoDB table name/],
    [{ logRetentionDays: 8 }, /logRetentionDays.*8 is not one of/],
    [{ rulesFile: "missing.yaml" }, /cannot read "missing.yaml"/],
    [{ deletionProtection: "maybe" }, /"maybe" must be true or false/],
    [{ degradedAfterMs: 1000 }, /degradedAfterMs.*≥ 60000/],
    [{ borrow: "sometimes" }, /"sometimes" must be true or false/],
    [{ dataAuthorizer: "jwt", jwtIssuer: "http://x" }, /jwtIssuer.*https URL/],
    [{ dataAuthorizer: "cognito" }, /must be iam, jwt or none/],
    [{ alarmDeniedRatio: 2 }, /alarmDeniedRatio.*between 0 and 1/],
    [{ alarmEmail: "nobody" }, /"nobody" is not an email address/],
  ])("rejects %o", (values, message) => {
    expect(() => loadConfig(ctx(values))).toThrow(message);
  });
});
