/**
 * Maps errors to HTTP. Named {@link TokenBankError}s become their status with
 * `{ "error": { "code", "message" } }`; anything else becomes a 500 that exposes nothing.
 */
import type middy from "@middy/core";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import { TokenBankError } from "../core/errors.js";

/** HTTP status of a named error. */
export function statusOf(error: TokenBankError): number {
  switch (error.kind) {
    case "invalid":
      return error.code === "route.method_not_allowed" ? 405 : 400;
    case "not_found":
      return 404;
    case "conflict":
      return 409;
    case "too_large":
      return 413;
    case "unsupported_media":
      return 415;
    case "unavailable":
      return 503;
    case "cap_reached":
      return 429;
  }
}

/** A JSON response. */
export function jsonResponse(statusCode: number, body: unknown, headers: Record<string, string> = {}): APIGatewayProxyStructuredResultV2 {
  return {
    statusCode,
    headers: { "content-type": "application/json", "cache-control": "no-store", ...headers },
    body: JSON.stringify(body),
  };
}

/** The response for any error. Logs unexpected ones (without exposing them). */
export function errorResponse(error: unknown, log: (msg: string, err: unknown) => void = logUnexpected): APIGatewayProxyStructuredResultV2 {
  if (error instanceof TokenBankError) {
    const status = statusOf(error);
    const headers: Record<string, string> = status === 503 ? { "retry-after": "1" } : {};
    const allow = error.details?.allow;
    if (typeof allow === "string") headers.allow = allow;
    return jsonResponse(status, { error: { code: error.code, message: error.message, ...(error.details ?? {}) } }, headers);
  }
  log("unexpected error", error);
  return jsonResponse(500, { error: { code: "internal.error", message: "internal error" } });
}

function logUnexpected(msg: string, err: unknown): void {
  console.error(
    JSON.stringify({
      level: "ERROR",
      message: msg,
      error: err instanceof Error ? { name: err.name, message: err.message, stack: err.stack } : String(err),
    }),
  );
}

/** middy middleware: turns any thrown error into its HTTP response. */
export function httpErrors(): middy.MiddlewareObj<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2> {
  return {
    onError: async (request) => {
      request.response = errorResponse(request.error);
    },
  };
}
