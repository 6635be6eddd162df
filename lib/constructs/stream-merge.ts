import { Duration, Stack, Validations } from "aws-cdk-lib";
import { Effect, PolicyStatement } from "aws-cdk-lib/aws-iam";
import { EventSourceMapping, FilterCriteria, FilterRule, type IFunction, StartingPosition } from "aws-cdk-lib/aws-lambda";
import { SqsDlq } from "aws-cdk-lib/aws-lambda-event-sources";
import { Queue, QueueEncryption } from "aws-cdk-lib/aws-sqs";
import { AwsCustomResource, AwsCustomResourcePolicy, PhysicalResourceId } from "aws-cdk-lib/custom-resources";
import { Construct } from "constructs";

/** Props of {@link StreamMerge}. */
export interface StreamMergeProps {
  /** The merge function. */
  readonly fn: IFunction;
  /** The table name (its replica in this stack's region is read). */
  readonly tableName: string;
  /** This region: its own slice rows are filtered out before invoking. */
  readonly region: string;
  /** Records per invocation. @default 100 */
  readonly batchSize?: number;
  /** Retries of a failing batch before it goes to the dead-letter queue. @default 10 */
  readonly retryAttempts?: number;
}

/**
 * Feeds this region's replica stream to the merge function: batches, bisect on error,
 * partial-batch responses, a dead-letter queue, and filter criteria so the function only sees
 * configs and peers' slice rows (never its own region's rows or heartbeats).
 */
export class StreamMerge extends Construct {
  readonly mapping: EventSourceMapping;
  readonly deadLetterQueue: Queue;
  /** The replica's stream ARN, looked up at deploy time (replicas get their own streams). */
  readonly streamArn: string;

  constructor(scope: Construct, id: string, props: StreamMergeProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const tableArn = stack.formatArn({ service: "dynamodb", resource: "table", resourceName: props.tableName });
    const describe = {
      service: "DynamoDB",
      action: "describeTable",
      parameters: { TableName: props.tableName },
      physicalResourceId: PhysicalResourceId.of(`${props.tableName}-stream-arn`),
    };
    const lookup = new AwsCustomResource(this, "StreamArnLookup", {
      onCreate: describe,
      onUpdate: describe,
      policy: AwsCustomResourcePolicy.fromSdkCalls({ resources: [tableArn] }),
      installLatestAwsSdk: false,
    });
    this.streamArn = lookup.getResponseField("Table.LatestStreamArn");

    this.deadLetterQueue = new Queue(this, "DeadLetters", {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.mapping = new EventSourceMapping(this, "Mapping", {
      target: props.fn,
      eventSourceArn: this.streamArn,
      startingPosition: StartingPosition.TRIM_HORIZON,
      batchSize: props.batchSize ?? 100,
      maxBatchingWindow: Duration.millis(0),
      bisectBatchOnError: true,
      reportBatchItemFailures: true,
      retryAttempts: props.retryAttempts ?? 10,
      parallelizationFactor: 1,
      onFailure: new SqsDlq(this.deadLetterQueue),
      filters: [
        // Configs (created, changed or deleted anywhere) and forecasts.
        FilterCriteria.filter({ dynamodb: { Keys: { sk: { S: FilterRule.isEqual("config") } } } }),
        FilterCriteria.filter({ dynamodb: { Keys: { sk: { S: FilterRule.beginsWith("forecast#") } } } }),
        // Peers' slice rows: never our own.
        FilterCriteria.filter({
          dynamodb: { Keys: { sk: { S: FilterRule.beginsWith("slice#") } }, NewImage: { reg: { S: FilterRule.notEquals(props.region) } } },
        }),
      ],
    });
    const streamResources = [stack.formatArn({ service: "dynamodb", resource: "table", resourceName: `${props.tableName}/stream/*` })];
    props.fn.addToRolePolicy(
      new PolicyStatement({
        effect: Effect.ALLOW,
        actions: ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"],
        resources: streamResources,
      }),
    );
    props.fn.addToRolePolicy(new PolicyStatement({ effect: Effect.ALLOW, actions: ["dynamodb:ListStreams"], resources: ["*"] }));
    this.deadLetterQueue.grantSendMessages(props.fn);
    Validations.of(this.deadLetterQueue).acknowledge({
      id: "AwsSolutions::AwsSolutions-SQS3",
      reason: "This queue is itself the dead-letter destination of the stream mapping",
    });
    const readOnlyStreams =
      "dynamodb:ListStreams supports no resource-level permission (needs *), and the replica's stream label is only known after deployment (table/<name>/stream/*); both are read-only";
    // On the function and on its role (an imported role's policy is the role's child, not the function's).
    for (const scope of [props.fn, ...(props.fn.role ? [props.fn.role] : [])]) {
      Validations.of(scope).acknowledge({ id: "AwsSolutions::AwsSolutions-IAM5[Resource::*]", reason: readOnlyStreams });
      Validations.of(scope).acknowledge({
        id: `AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:dynamodb:${stack.region}:<AWS::AccountId>:table/${props.tableName}/stream/*]`,
        reason: readOnlyStreams,
      });
    }
  }
}
