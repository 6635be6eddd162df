/** `GET /status/{key}`: the bucket as this region sees it. */
import { bucketStatus, type StatusDeps } from "../app/status.js";
import { jsonResponse } from "../middleware/http-errors.js";
import { type HttpHandler, httpHandler } from "./http.js";

/** Builds the status handler. */
export function makeStatusHandler(deps: StatusDeps): HttpHandler {
  return httpHandler(async (event) => jsonResponse(200, await bucketStatus(deps, event.pathParameters?.key ?? "")));
}
