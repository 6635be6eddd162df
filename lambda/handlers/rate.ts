/** `POST /rate`: take tokens from every applicable bucket, all or nothing. */

import type { APIGatewayProxyEventV2 } from "aws-lambda";
import * as z from "zod/mini";
import type { Limiter } from "../app/limiter.js";
import type { RateDecision } from "../core/decision.js";
import { BucketCapError, StoreUnavailableError } from "../core/errors.js";
import { MAX_CAPACITY, wholeNumber } from "../core/limits.js";
import { parseJsonBody } from "../middleware/json-body.js";
import { rateResponse } from "../middleware/rate-limit-headers.js";
import { silentTelemetry, type Telemetry } from "../ports/telemetry.js";
import { type HttpHandler, headersOf, httpHandler } from "./http.js";

/** Body of `POST /rate`. */
export const rateBody = z.object({
  key: z.optional(z.string({ error: "must be a string" })),
  tokens: z._default(wholeNumber(0, MAX_CAPACITY), 1),
  requestId: z.optional(z.string({ error: "must be a string" })),
});

/** The authenticated caller API Gateway vouches for: the IAM principal or the JWT subject (none: ""). */
export function callerOf(event: APIGatewayProxyEventV2): string {
  const authorizer = (event.requestContext as { authorizer?: { iam?: { userArn?: string }; jwt?: { claims?: Record<string, unknown> } } })
    .authorizer;
  const arn = authorizer?.iam?.userArn;
  if (arn) return `iam:${arn}`;
  const sub = authorizer?.jwt?.claims?.sub;
  return typeof sub === "string" ? `jwt:${sub}` : "";
}

/**
 * Builds the rate handler over a limiter.
 * @example export const handler = makeRateHandler({ limiter, region: "us-east-1" });
 */
export function makeRateHandler(deps: { limiter: Limiter; region: string; telemetry?: Telemetry }): HttpHandler {
  const telemetry = deps.telemetry ?? silentTelemetry;
  return httpHandler(async (event) => {
    const body = parseJsonBody(event, rateBody, true);
    let decision: RateDecision & { replayed?: boolean };
    try {
      const headers = headersOf(event);
      decision = await deps.limiter.rate({
        key: body.key,
        tokens: body.tokens,
        headers,
        idempotencyKey: headers["idempotency-key"] ?? body.requestId,
        caller: callerOf(event),
      });
    } catch (error) {
      if (error instanceof BucketCapError) {
        telemetry.metric("BucketCapReached", 1);
        telemetry.log("warn", "rule bucket cap reached", { ...error.details });
      }
      if (error instanceof StoreUnavailableError) {
        telemetry.metric("StoreErrors", 1);
        telemetry.log("warn", "store unavailable", { code: error.code, cause: String(error.cause) });
      }
      throw error;
    }
    const response = rateResponse(decision, deps.region);
    if (decision.replayed) response.headers = { ...response.headers, "idempotent-replayed": "true" };
    else {
      telemetry.metric("Decisions", 1);
      telemetry.metric(decision.allowed ? "Allowed" : "Denied", 1);
      if (decision.failOpen) telemetry.metric("FailOpen", 1);
    }
    return response;
  });
}
