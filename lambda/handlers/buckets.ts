/** `PUT` / `PATCH` / `GET` / `DELETE /buckets/{key}`: explicit bucket configurations. */
import type { APIGatewayProxyEventV2 } from "aws-lambda";
import * as z from "zod/mini";
import type { BucketAdmin } from "../app/buckets.js";
import { ValidationError } from "../core/errors.js";
import { boundFields, limitFields } from "../core/limits.js";
import { jsonResponse } from "../middleware/http-errors.js";
import { parseJsonBody } from "../middleware/json-body.js";
import { type HttpHandler, httpHandler } from "./http.js";

const options = {
  ...boundFields,
  inherit: z.optional(
    z.enum(["proportional", "as-is", "reset", "additive"], { error: 'must be "proportional", "as-is", "reset" or "additive"' }),
  ),
  predictive: z.optional(z.boolean({ error: "must be true or false" })),
  forecastGrowth: z.optional(z.boolean({ error: "must be true or false" })),
};

/** Body of `PUT /buckets/{key}`. */
export const putBody = z.strictObject({ ...limitFields, ...options });
/** Body of `PATCH /buckets/{key}`: any of the fields, at least one. */
export const patchBody = z
  .strictObject({
    capacity: z.optional(limitFields.capacity),
    refillRate: z.optional(limitFields.refillRate),
    ttl: limitFields.ttl,
    onError: z.optional(z.enum(["allow", "deny"], { error: 'must be "allow" or "deny"' })),
    ...options,
  })
  .check(z.refine((v) => Object.values(v).some((x) => x !== undefined), { error: "give at least one field to change" }));

/** Who made the change: the IAM caller in AWS, else `anonymous`. */
function actorOf(event: APIGatewayProxyEventV2): string {
  const ctx = event.requestContext as { authorizer?: { iam?: { userArn?: string } } };
  return ctx.authorizer?.iam?.userArn ?? "anonymous";
}

/** Builds the admin handler. */
export function makeBucketsHandler(deps: { admin: BucketAdmin }): HttpHandler {
  return httpHandler(async (event) => {
    const key = event.pathParameters?.key ?? "";
    const method = event.requestContext.http.method.toUpperCase();
    if (event.rawPath?.endsWith("/history") && event.routeKey?.endsWith("/history")) {
      if (method !== "GET") {
        throw new ValidationError("route.method_not_allowed", `method ${method} is not allowed on /buckets/{key}/history`, {
          details: { allow: "GET" },
        });
      }
      return jsonResponse(200, { key, history: await deps.admin.history(key) });
    }
    switch (method) {
      case "GET":
        return jsonResponse(200, await deps.admin.get(key));
      case "PUT": {
        const { capacity, refillRate, ttl, onError, ...rest } = parseJsonBody(event, putBody);
        const { view, created } = await deps.admin.put(key, { capacity, refillRate, ttl, onError }, actorOf(event), rest);
        return jsonResponse(created ? 201 : 200, view);
      }
      case "PATCH":
        return jsonResponse(200, await deps.admin.patch(key, parseJsonBody(event, patchBody), actorOf(event)));
      case "DELETE":
        await deps.admin.delete(key);
        return { statusCode: 204 };
      default:
        throw new ValidationError("route.method_not_allowed", `method ${method} is not allowed on /buckets/{key}`, {
          details: { allow: "GET, PUT, PATCH, DELETE" },
        });
    }
  });
}
