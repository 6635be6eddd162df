import { CfnOutput, Duration } from "aws-cdk-lib";
import { EventBus, Rule, Schedule } from "aws-cdk-lib/aws-events";
import { LambdaFunction } from "aws-cdk-lib/aws-events-targets";
import type { IFunction } from "aws-cdk-lib/aws-lambda";
import { Construct } from "constructs";

/** Props of {@link ScheduledJobs}. */
export interface ScheduledJobsProps {
  /** Writes the region's heartbeat. */
  readonly heartbeat: IFunction;
  /** The reconciler. */
  readonly reconcile: IFunction;
  /** The forecaster (also the target of forecast events). */
  readonly forecast: IFunction;
  /** Heartbeat period. @default 1 minute (EventBridge's finest) */
  readonly heartbeatEvery?: Duration;
  /** Reconciler period. @default 5 minutes */
  readonly reconcileEvery?: Duration;
  /** Built-in forecaster period. @default 1 minute */
  readonly forecastEvery?: Duration;
}

/** The region's EventBridge schedules, and the bus that takes forecast events. */
export class ScheduledJobs extends Construct {
  readonly heartbeatRule: Rule;
  readonly reconcileRule: Rule;
  readonly forecastRule: Rule;
  /** Put `detail-type: "tokenbank.forecast"` events here. */
  readonly bus: EventBus;
  readonly forecastEventsRule: Rule;

  constructor(scope: Construct, id: string, props: ScheduledJobsProps) {
    super(scope, id);
    this.heartbeatRule = new Rule(this, "Heartbeat", {
      description: "tokenbank: write this region's heartbeat",
      schedule: Schedule.rate(props.heartbeatEvery ?? Duration.minutes(1)),
      targets: [new LambdaFunction(props.heartbeat, { retryAttempts: 2 })],
    });
    this.reconcileRule = new Rule(this, "Reconcile", {
      description: "tokenbank: reconcile this region's replica",
      schedule: Schedule.rate(props.reconcileEvery ?? Duration.minutes(5)),
      targets: [new LambdaFunction(props.reconcile, { retryAttempts: 1 })],
    });
    this.forecastRule = new Rule(this, "Forecast", {
      description: "tokenbank: built-in demand forecaster",
      schedule: Schedule.rate(props.forecastEvery ?? Duration.minutes(1)),
      targets: [new LambdaFunction(props.forecast, { retryAttempts: 1 })],
    });
    this.bus = new EventBus(this, "Bus", { eventBusName: "tokenbank" });
    this.forecastEventsRule = new Rule(this, "ForecastEvents", {
      description: "tokenbank: forecast hooks (detail-type tokenbank.forecast)",
      eventBus: this.bus,
      eventPattern: { detailType: ["tokenbank.forecast"] },
      targets: [new LambdaFunction(props.forecast, { retryAttempts: 2 })],
    });
    new CfnOutput(this, "ForecastBus", { value: this.bus.eventBusName, description: "Put tokenbank.forecast events here" });
  }
}
