/** `GET /health`: liveness of this region's API (does not touch the store). */
import { jsonResponse } from "../middleware/http-errors.js";
import { type HttpHandler, httpHandler } from "./http.js";

/** Builds the health handler. */
export function makeHealthHandler(deps: { region: string }): HttpHandler {
  return httpHandler(async () => jsonResponse(200, { status: "ok", region: deps.region }));
}
