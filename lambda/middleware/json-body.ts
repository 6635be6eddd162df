/**
 * Parses and validates a JSON request body against one schema, mapping problems to named
 * 4xx errors: 415 `request.unsupported_media_type`, 400 `request.malformed_json`, and 400
 * with a per-field code (`request.invalid_<field>`, else `request.invalid_body`).
 */
import type { APIGatewayProxyEventV2 } from "aws-lambda";
import type * as z from "zod/mini";
import { UnsupportedMediaTypeError, ValidationError } from "../core/errors.js";
import { formatIssue } from "../core/rules.js";

/** Fields with their own error code, e.g. `tokens` → `request.invalid_tokens`. */
const FIELD_CODES = new Set([
  "key",
  "tokens",
  "capacity",
  "refillRate",
  "ttl",
  "onError",
  "inherit",
  "predictive",
  "forecastGrowth",
  "minCapacity",
  "maxCapacity",
  "minRefillRate",
  "maxRefillRate",
]);

/** The raw body text, or `undefined` if there is none. */
function bodyText(event: APIGatewayProxyEventV2): string | undefined {
  if (event.body === undefined || event.body === "") return undefined;
  return event.isBase64Encoded ? Buffer.from(event.body, "base64").toString("utf8") : event.body;
}

/**
 * The validated body. An absent body counts as `{}` when `optional`.
 * @throws {UnsupportedMediaTypeError} when a body is not declared as JSON
 * @throws {ValidationError} when it is malformed or invalid
 */
export function parseJsonBody<S extends z.ZodMiniType>(event: APIGatewayProxyEventV2, schema: S, optional = false): z.infer<S> {
  const text = bodyText(event);
  let value: unknown = {};
  if (text === undefined) {
    if (!optional) throw new ValidationError("request.missing_body", "a JSON body is required");
  } else {
    const type = (event.headers?.["content-type"] ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
    if (type !== "application/json" && !type.endsWith("+json")) {
      throw new UnsupportedMediaTypeError(
        "request.unsupported_media_type",
        `content-type must be application/json (got ${type === "" ? "none" : `"${type}"`})`,
      );
    }
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw new ValidationError("request.malformed_json", `the body is not valid JSON: ${(error as Error).message}`);
    }
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path[0];
    const code =
      typeof field === "string" && FIELD_CODES.has(field)
        ? `request.invalid_${field.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}`
        : "request.invalid_body";
    throw new ValidationError(code, formatIssue(issue, ""));
  }
  return parsed.data;
}
