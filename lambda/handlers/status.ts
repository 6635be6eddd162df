/** `GET /status/{key}`: the bucket as this region sees it. */
import { bucketStatus } from "../app/status.js";
import { jsonResponse } from "../middleware/http-errors.js";
import type { BucketStore } from "../ports/bucket-store.js";
import type { Clock } from "../ports/clock.js";
import { type HttpHandler, httpHandler } from "./http.js";

/** Builds the status handler. */
export function makeStatusHandler(deps: { store: BucketStore; clock: Clock }): HttpHandler {
  return httpHandler(async (event) => jsonResponse(200, await bucketStatus(deps, event.pathParameters?.key ?? "")));
}
