/** The middy chain every HTTP handler shares: errors mapped to JSON responses. */
import middy from "@middy/core";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from "aws-lambda";
import { httpErrors } from "../middleware/http-errors.js";

/** An API Gateway HTTP API (v2) handler. */
export type HttpHandler = (event: APIGatewayProxyEventV2, context: Context) => Promise<APIGatewayProxyStructuredResultV2>;

/** Wraps a base handler in the standard HTTP middleware. */
export function httpHandler(base: (event: APIGatewayProxyEventV2) => Promise<APIGatewayProxyStructuredResultV2>): HttpHandler {
  return middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>(base).use(httpErrors()) as unknown as HttpHandler;
}

/** Lower-cased request headers. */
export function headersOf(event: APIGatewayProxyEventV2): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(event.headers ?? {})) out[name.toLowerCase()] = value;
  return out;
}
