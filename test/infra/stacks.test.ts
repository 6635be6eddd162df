/** Fine-grained assertions on the synthesized stacks (no bundling: placeholder assets). */
import { App } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import { describe, expect, it } from "vitest";
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
});

describe("RegionStack", () => {
  it("runs every handler on nodejs22.x, arm64, with the table and rules in its environment", () => {
    region.resourcePropertiesCountIs("AWS::Lambda::Function", { Runtime: "nodejs22.x", Architectures: ["arm64"] }, 7);
    region.hasResourceProperties("AWS::Lambda::Function", {
      Environment: {
        Variables: Match.objectLike({ TOKENBANK_TABLE: "tokenbank", TOKENBANK_RULES_YAML: Match.stringLikeRegexp("per-agent") }),
      },
      LoggingConfig: { LogFormat: "JSON", LogGroup: Match.anyValue() },
    });
  });

  it("routes POST /rate, GET /status/{key}, GET /health and the admin methods", () => {
    for (const key of [
      "POST /rate",
      "GET /status/{key}",
      "GET /health",
      "GET /buckets/{key}",
      "PUT /buckets/{key}",
      "PATCH /buckets/{key}",
      "DELETE /buckets/{key}",
    ]) {
      region.hasResourceProperties("AWS::ApiGatewayV2::Route", { RouteKey: key });
    }
  });

  it("requires IAM on admin and data routes, not on /health", () => {
    for (const key of ["PUT /buckets/{key}", "DELETE /buckets/{key}", "POST /rate", "GET /status/{key}"]) {
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
    // The status function only reads.
    region.hasResourceProperties("AWS::IAM::Policy", {
      PolicyDocument: {
        Statement: [
          Match.objectLike({ Action: "dynamodb:GetItem", Resource: Match.anyValue() }),
          Match.objectLike({ Action: "dynamodb:Query", Resource: Match.anyValue() }),
        ],
      },
    });
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
      { dynamodb: { Keys: { sk: { S: [{ prefix: "slice#" }] } }, NewImage: { reg: { S: [{ "anything-but": ["eu-central-1"] }] } } } },
    ]);
  });

  it("looks up the replica's stream with a read-only DescribeTable call", () => {
    region.hasResourceProperties("Custom::AWS", { Create: Match.stringLikeRegexp('"action":"describeTable"') });
  });

  it("names the transfer function per region and lets the rate function invoke only the peers' ones", () => {
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

  it("writes a heartbeat every minute", () => {
    region.hasResourceProperties("AWS::Events::Rule", { ScheduleExpression: "rate(1 minute)", State: "ENABLED" });
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
  ])("rejects %o", (values, message) => {
    expect(() => loadConfig(ctx(values))).toThrow(message);
  });
});
