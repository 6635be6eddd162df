/** Lambda entry point of `GET /health`. */
import { makeHealthHandler } from "../handlers/health.js";

export const handler = makeHealthHandler({ region: process.env.AWS_REGION ?? "unknown" });
