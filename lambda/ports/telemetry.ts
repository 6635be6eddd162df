/**
 * The telemetry port: structured logs and metrics, so the app and handlers never import a
 * vendor SDK. Adapters: Powertools (EMF metrics + JSON logs) in Lambda, a silent one in tests
 * and the local system.
 */

/** Metric names tokenbank emits (namespace `tokenbank`, dimension `region`). */
export type MetricName =
  | "Decisions"
  | "Allowed"
  | "Denied"
  | "FailOpen"
  | "StoreErrors"
  | "Merges"
  | "Gives"
  | "Offers"
  | "Lends"
  | "MergeLagMs"
  | "MergeFailures"
  | "InvariantViolations"
  | "UnrepairedViolations"
  | "BucketCapReached";

/** Where telemetry goes. */
export interface Telemetry {
  /** Adds to a metric (a count, or milliseconds for `*Ms`). */
  metric(name: MetricName, value: number): void;
  /** A structured log line. */
  log(level: "info" | "warn" | "error", message: string, data?: Record<string, unknown>): void;
}

/** Telemetry that goes nowhere. */
export const silentTelemetry: Telemetry = {
  metric: () => undefined,
  log: () => undefined,
};
