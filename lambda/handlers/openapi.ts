/** `GET /openapi.json`: the API's OpenAPI 3.1 document. */
import { jsonResponse } from "../middleware/http-errors.js";
import { openApiDocument } from "../openapi.js";
import { type HttpHandler, httpHandler } from "./http.js";

/** Builds the handler. */
export function makeOpenApiHandler(): HttpHandler {
  return httpHandler(async () => jsonResponse(200, openApiDocument, { "cache-control": "public, max-age=300" }));
}
