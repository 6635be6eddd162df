/**
 * One comparison server in its own process (so that load from another process measures it, not
 * the load generator): `tsx bench/load/server.ts KIND ENDPOINT CAPACITY REFILL`, with KIND one of
 * `floor`, `rlf`, `textbook`. Prints one JSON line `{"url": …}` when it listens; on a line
 * `stats` on standard input it prints `{"calls": N, "decisions": N}`; SIGTERM stops it.
 */
import { createInterface } from "node:readline";
import { type Competitor, startFloorBucket, startRateLimiterFlexible, startTextbookBucket } from "../competitors.js";

const [kind, endpoint, capacity = "1000000000", refill = "1"] = process.argv.slice(2);
if (!endpoint || !["floor", "rlf", "textbook"].includes(kind ?? "")) {
  console.error("usage: tsx bench/load/server.ts floor|rlf|textbook ENDPOINT [CAPACITY] [REFILL]");
  process.exit(2);
}
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
const cap = Number(capacity);
const rate = Number(refill);
const server: Competitor =
  kind === "floor"
    ? await startFloorBucket(endpoint, cap, rate)
    : kind === "rlf"
      ? await startRateLimiterFlexible(endpoint, cap, 3600)
      : await startTextbookBucket(endpoint, cap, rate);
console.log(JSON.stringify({ url: server.url, name: server.name }));
createInterface({ input: process.stdin }).on("line", (line) => {
  if (line.trim() === "stats") console.log(JSON.stringify({ calls: server.calls(), decisions: server.decisions() }));
});
process.on("SIGTERM", () => void server.close().then(() => process.exit(0)));
