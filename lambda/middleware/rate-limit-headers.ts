/**
 * Presents a {@link RateDecision} as HTTP: 200 or 429, the JSON contract, `Retry-After`, and
 * the IETF `RateLimit-Policy` / `RateLimit` fields (draft-ietf-httpapi-ratelimit-headers):
 * per bucket, quota `q` (capacity), window `w` (seconds to refill from empty), remaining `r`
 * and `t` (seconds until full). Numbers shown to clients round against the client: tokens
 * down, waits up.
 */
import type { APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import type { BucketDecision, RateDecision } from "../core/decision.js";
import { TOKEN } from "../core/units.js";
import { jsonResponse } from "./http-errors.js";

const msCeil = (us: bigint | null): number | null => (us === null ? null : Number((us + 999n) / 1000n));

/** One bucket's JSON. */
export function bucketJson(b: BucketDecision) {
  return {
    key: b.key,
    ...(b.rule === undefined ? {} : { rule: b.rule }),
    allowed: b.allowed,
    ...(b.reason ? { reason: b.reason } : {}),
    tokens: b.tokens,
    remaining: Number(b.remaining / TOKEN),
    capacity: b.capacity,
    refillRate: b.refillRate,
    retryAfterMs: msCeil(b.retryAfterUs),
    resetAfterMs: msCeil(b.resetAfterUs),
  };
}

/**
 * A bucket's policy name: its rule's name (a rendered key may carry a header's value: never
 * echoed), or an explicit bucket's key; a structured-field string, or a token name when it is
 * not printable ASCII.
 */
function policyName(b: BucketDecision, index: number): string {
  const name = b.rule ?? b.key;
  return /^[\x20-\x7e]*$/.test(name) ? `"${name.replace(/[\\"]/g, (c) => `\\${c}`)}"` : `"bucket-${index + 1}"`;
}

/** The `RateLimit-Policy` and `RateLimit` header values. */
export function rateLimitHeaders(buckets: readonly BucketDecision[]): { policy: string; limit: string } {
  const policy = buckets.map((b, i) => {
    const window = b.refillRate > 0 ? Math.ceil(b.capacity / b.refillRate) : 0;
    return `${policyName(b, i)};q=${b.capacity}${window > 0 ? `;w=${window}` : ""}`;
  });
  const limit = buckets.map((b, i) => {
    const reset = b.resetAfterUs === null ? null : Math.ceil(Number(b.resetAfterUs) / 1e6);
    return `${policyName(b, i)};r=${b.remaining / TOKEN}${reset === null ? "" : `;t=${reset}`}`;
  });
  return { policy: policy.join(", "), limit: limit.join(", ") };
}

/** The full HTTP response for a decision. */
export function rateResponse(decision: RateDecision, region: string): APIGatewayProxyStructuredResultV2 {
  const top = decision.buckets[0] as BucketDecision;
  const headers: Record<string, string> = {};
  if (!decision.failOpen) {
    const { policy, limit } = rateLimitHeaders(decision.buckets);
    headers["ratelimit-policy"] = policy;
    headers.ratelimit = limit;
  }
  const retryAfterMs = msCeil(top.retryAfterUs);
  if (!decision.allowed && retryAfterMs !== null) headers["retry-after"] = String(Math.max(1, Math.ceil(retryAfterMs / 1000)));
  const body = {
    ...bucketJson(top),
    allowed: decision.allowed,
    region,
    ...(decision.failOpen ? { failOpen: true } : {}),
    buckets: decision.buckets.map(bucketJson),
  };
  return jsonResponse(decision.allowed ? 200 : 429, body, headers);
}
