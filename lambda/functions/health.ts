/** Lambda entry point of `GET /health` and `GET /openapi.json` (public, read nothing). */
import type { APIGatewayProxyEventV2, Context } from "aws-lambda";
import { makeHealthHandler } from "../handlers/health.js";
import { makeOpenApiHandler } from "../handlers/openapi.js";

const health = makeHealthHandler({ region: process.env.AWS_REGION ?? "unknown" });
const openapi = makeOpenApiHandler();

export const handler = (event: APIGatewayProxyEventV2, context: Context) =>
  event.rawPath === "/openapi.json" ? openapi(event, context) : health(event, context);
