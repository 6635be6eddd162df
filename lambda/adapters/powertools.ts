/**
 * Telemetry through Powertools for AWS Lambda: JSON logs (with the Lambda context) and
 * CloudWatch metrics in Embedded Metric Format, flushed after each invocation by middy.
 */

import { Logger } from "@aws-lambda-powertools/logger";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";
import { logMetrics } from "@aws-lambda-powertools/metrics/middleware";
import type middy from "@middy/core";
import type { MetricName, Telemetry } from "../ports/telemetry.js";

/** A Powertools-backed telemetry and the middlewares that flush it. */
export function powertoolsTelemetry(service: string, region: string) {
  const logger = new Logger({ serviceName: `tokenbank-${service}` });
  const metrics = new Metrics({ namespace: "tokenbank", serviceName: `tokenbank-${service}`, defaultDimensions: { region } });
  const telemetry: Telemetry = {
    metric: (name: MetricName, value: number) =>
      metrics.addMetric(name, name.endsWith("Ms") ? MetricUnit.Milliseconds : MetricUnit.Count, value),
    log: (level, message, data) => logger[level](message, data ?? {}),
  };
  /** Adds the context injection and the metrics flush to a middy handler. */
  const wrap = <T>(handler: T): T => {
    const m = handler as unknown as middy.MiddyfiedHandler;
    m.use(injectLambdaContext(logger)).use(logMetrics(metrics, { throwOnEmptyMetrics: false }));
    return handler;
  };
  return { telemetry, logger, metrics, wrap };
}
