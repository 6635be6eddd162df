import { Duration } from "aws-cdk-lib";
import { Rule, Schedule } from "aws-cdk-lib/aws-events";
import { LambdaFunction } from "aws-cdk-lib/aws-events-targets";
import type { IFunction } from "aws-cdk-lib/aws-lambda";
import { Construct } from "constructs";

/** Props of {@link ScheduledJobs}. */
export interface ScheduledJobsProps {
  /** Writes the region's heartbeat. */
  readonly heartbeat: IFunction;
  /** Heartbeat period. @default 1 minute (EventBridge's finest) */
  readonly heartbeatEvery?: Duration;
}

/** The region's EventBridge schedules. */
export class ScheduledJobs extends Construct {
  readonly heartbeatRule: Rule;

  constructor(scope: Construct, id: string, props: ScheduledJobsProps) {
    super(scope, id);
    this.heartbeatRule = new Rule(this, "Heartbeat", {
      description: "tokenbank: write this region's heartbeat",
      schedule: Schedule.rate(props.heartbeatEvery ?? Duration.minutes(1)),
      targets: [new LambdaFunction(props.heartbeat, { retryAttempts: 2 })],
    });
  }
}
