/** Scheduled entry point of the reconciler (EventBridge, every few minutes). */
import middy from "@middy/core";
import { readEnv, storeFor, topologyFor } from "../adapters/env.js";
import { powertoolsTelemetry } from "../adapters/powertools.js";
import { systemClock } from "../adapters/system-clock.js";
import { reconcile } from "../app/reconciler.js";

const env = readEnv();
const obs = powertoolsTelemetry("reconcile", env.region);
const store = storeFor(env);

export const handler = obs.wrap(
  middy(async () => {
    // A budgeted pass within the function's timeout; the next run resumes from its checkpoint.
    const report = await reconcile(
      { store, clock: systemClock, topology: topologyFor(env), telemetry: obs.telemetry, rules: env.rules },
      { budgetMs: env.jobBudgetMs, snapshots: false },
    );
    obs.telemetry.log(report.violations.length > 0 ? "error" : "info", "reconciled", {
      buckets: report.visited,
      complete: report.complete,
      violations: report.violations,
      actions: report.actions,
    });
    return { visited: report.visited, complete: report.complete, violations: report.violations.length, actions: report.actions.length };
  }),
);
