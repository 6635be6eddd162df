import { Duration } from "aws-cdk-lib";
import { Alarm, ComparisonOperator, Dashboard, GraphWidget, MathExpression, Metric, TreatMissingData } from "aws-cdk-lib/aws-cloudwatch";
import { SnsAction } from "aws-cdk-lib/aws-cloudwatch-actions";
import type { IFunction } from "aws-cdk-lib/aws-lambda";
import { Topic } from "aws-cdk-lib/aws-sns";
import { EmailSubscription } from "aws-cdk-lib/aws-sns-subscriptions";
import type { IQueue } from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";

/** Alarm thresholds. */
export interface AlarmThresholds {
  /** Global Tables `ReplicationLatency` and our merge lag above this, ms. */
  readonly syncLagMs: number;
  /** Denied / decisions above this fraction for 3 minutes: a depletion spike. */
  readonly deniedRatio: number;
  /** Stream iterator age of the merge function above this, ms. */
  readonly iteratorAgeMs: number;
}

/** Props of {@link Monitoring}. */
export interface MonitoringProps {
  readonly region: string;
  readonly peers: readonly string[];
  readonly tableName: string;
  /** Every function, by a short name. */
  readonly functions: Readonly<Record<string, IFunction>>;
  readonly mergeFunction: IFunction;
  readonly deadLetterQueue: IQueue;
  readonly thresholds: AlarmThresholds;
  /** Email to notify (optional). */
  readonly alarmEmail?: string | undefined;
}

const metric = (name: string, service: string, region: string, statistic = "Sum") =>
  new Metric({
    namespace: "tokenbank",
    metricName: name,
    dimensionsMap: { service: `tokenbank-${service}`, region },
    statistic,
    period: Duration.minutes(1),
  });

/** The region's alarms (to an SNS topic) and dashboard. */
export class Monitoring extends Construct {
  readonly topic: Topic;
  readonly alarms: Alarm[] = [];
  readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    const t = props.thresholds;
    this.topic = new Topic(this, "Alarms", { displayName: `tokenbank alarms (${props.region})`, enforceSSL: true });
    if (props.alarmEmail) this.topic.addSubscription(new EmailSubscription(props.alarmEmail));
    const add = (alarm: Alarm) => {
      alarm.addAlarmAction(new SnsAction(this.topic));
      this.alarms.push(alarm);
      return alarm;
    };
    const above = (alarmId: string, m: Metric | MathExpression, threshold: number, description: string, periods = 3) =>
      add(
        new Alarm(this, alarmId, {
          metric: m,
          threshold,
          evaluationPeriods: periods,
          comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
          treatMissingData: TreatMissingData.NOT_BREACHING,
          alarmDescription: description,
        }),
      );

    // Sync lag: Global Tables replication out of this region, and our own merge lag in.
    for (const peer of props.peers) {
      above(
        `ReplicationLatency-${peer}`,
        new Metric({
          namespace: "AWS/DynamoDB",
          metricName: "ReplicationLatency",
          dimensionsMap: { TableName: props.tableName, ReceivingRegion: peer },
          statistic: "Average",
          period: Duration.minutes(1),
        }),
        t.syncLagMs,
        `Replication from ${props.region} to ${peer} is slower than ${t.syncLagMs} ms: slices follow demand late`,
      );
    }
    above(
      "MergeLag",
      metric("MergeLagMs", "stream-merge", props.region, "Maximum"),
      t.syncLagMs,
      `Peers' state reaches the merge handler later than ${t.syncLagMs} ms`,
    );
    above(
      "DepletionSpike",
      new MathExpression({
        expression: "IF(decisions > 0, denied / decisions, 0)",
        usingMetrics: { denied: metric("Denied", "rate", props.region), decisions: metric("Decisions", "rate", props.region) },
        period: Duration.minutes(1),
        label: "denied ratio",
      }),
      t.deniedRatio,
      `More than ${t.deniedRatio * 100}% of decisions denied for 3 minutes`,
    );
    above(
      "StreamIteratorAge",
      props.mergeFunction.metric("IteratorAge", { statistic: "Maximum", period: Duration.minutes(1) }),
      t.iteratorAgeMs,
      `The merge handler is more than ${t.iteratorAgeMs} ms behind its stream`,
    );
    // Alarms on any occurrence within a minute: [metric, service that emits it, what it means].
    const anyOf: [string, string, string][] = [
      ["StoreErrors", "rate", "Decisions failed because DynamoDB was unavailable or throttling"],
      ["InvariantViolations", "reconcile", "The reconciler found a broken invariant (I1, I2 or I4)"],
      [
        "UnrepairedViolations",
        "reconcile",
        "An invariant violation the reconciler cannot repair from this region (a peer's row): see the reconcile logs",
      ],
      ["BucketCapReached", "rate", "A rule reached its cap on live buckets (maxBuckets): new keys get 429 rule.bucket_cap_reached"],
    ];
    for (const [name, service, description] of anyOf) above(name, metric(name, service, props.region), 0, description, 1);
    for (const [name, fn] of Object.entries(props.functions)) {
      above(`${name}-Errors`, fn.metricErrors({ period: Duration.minutes(1) }), 0, `${name} function errors`, 1);
      above(`${name}-Throttles`, fn.metricThrottles({ period: Duration.minutes(1) }), 0, `${name} function throttles`, 1);
    }
    for (const kind of ["Read", "Write"]) {
      above(
        `DynamoDB${kind}Throttles`,
        new Metric({
          namespace: "AWS/DynamoDB",
          metricName: `${kind}ThrottleEvents`,
          dimensionsMap: { TableName: props.tableName },
          statistic: "Sum",
          period: Duration.minutes(1),
        }),
        0,
        `DynamoDB ${kind.toLowerCase()} throttling on ${props.tableName}`,
        1,
      );
    }
    above(
      "MergeDeadLetters",
      props.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1) }),
      0,
      "Stream records the merge handler gave up on",
      1,
    );

    this.dashboard = new Dashboard(this, "Dashboard", { dashboardName: `tokenbank-${props.region}` });
    this.dashboard.addWidgets(
      new GraphWidget({
        title: "Decisions",
        left: ["Decisions", "Allowed", "Denied", "FailOpen"].map((n) => metric(n, "rate", props.region)),
      }),
      new GraphWidget({
        title: "Sync lag (ms)",
        left: [
          metric("MergeLagMs", "stream-merge", props.region, "Maximum"),
          ...props.peers.map(
            (peer) =>
              new Metric({
                namespace: "AWS/DynamoDB",
                metricName: "ReplicationLatency",
                dimensionsMap: { TableName: props.tableName, ReceivingRegion: peer },
                statistic: "Average",
              }),
          ),
        ],
      }),
      new GraphWidget({
        title: "Merges, gives and offers",
        left: ["Merges", "Gives", "Offers"].map((n) => metric(n, "stream-merge", props.region)),
      }),
      new GraphWidget({ title: "Stream iterator age (ms)", left: [props.mergeFunction.metric("IteratorAge", { statistic: "Maximum" })] }),
      new GraphWidget({ title: "Function errors", left: Object.values(props.functions).map((fn) => fn.metricErrors()) }),
    );
  }
}
