/**
 * The OpenAPI 3.1 contract of the regional HTTP API, served at `GET /openapi.json`. A test runs
 * every route and status the handlers produce against it (objects are closed: a field the
 * document lacks fails the test).
 */
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: object, description: string) => ({ description, content: { "application/json": { schema } } });
const error = (description: string) => json(ref("Error"), description);
const key = { name: "key", in: "path", required: true, schema: { type: "string", minLength: 1, maxLength: 512 } };
const nullableInt = { type: ["integer", "null"], minimum: 0 };
const limits = {
  capacity: { type: "integer", minimum: 1, maximum: 1_000_000_000 },
  refillRate: { type: "number", minimum: 0, maximum: 1_000_000_000 },
  ttl: { type: "integer", minimum: 1 },
  onError: { enum: ["allow", "deny"] },
  minCapacity: { type: "integer", minimum: 1 },
  maxCapacity: { type: "integer", minimum: 1 },
  minRefillRate: { type: "number", minimum: 0 },
  maxRefillRate: { type: "number", minimum: 0 },
  inherit: { enum: ["proportional", "as-is", "reset", "additive"] },
  predictive: { type: "boolean" },
  forecastGrowth: { type: "boolean" },
};
const bucketDecision = {
  type: "object",
  additionalProperties: false,
  required: ["key", "allowed", "tokens", "remaining", "capacity", "refillRate", "retryAfterMs", "resetAfterMs"],
  properties: {
    key: { type: "string" },
    rule: { type: "string", description: "the rule of the rules file that produced this bucket (absent: an explicit bucket)" },
    allowed: { type: "boolean" },
    reason: { enum: ["insufficient", "exceeds_capacity"] },
    tokens: { type: "integer", minimum: 0 },
    remaining: { type: "integer", minimum: 0 },
    capacity: { type: "integer", minimum: 1 },
    refillRate: { type: "number", minimum: 0 },
    retryAfterMs: nullableInt,
    resetAfterMs: nullableInt,
  },
};
const rateLimitHeaders = {
  "RateLimit-Policy": {
    description: "IETF RateLimit-Policy: one item per bucket, q = capacity, w = seconds to refill",
    schema: { type: "string" },
  },
  RateLimit: { description: "IETF RateLimit: one item per bucket, r = remaining, t = seconds until full", schema: { type: "string" } },
};

/** The document. */
export const openApiDocument = {
  openapi: "3.1.0",
  info: {
    title: "tokenbank",
    version: "0.1.0",
    description: "Globally distributed token buckets: every region answers locally, the limit holds world-wide.",
  },
  paths: {
    "/rate": {
      post: {
        operationId: "rate",
        summary: "Take tokens from every applicable bucket, all or nothing",
        parameters: [
          {
            name: "Idempotency-Key",
            in: "header",
            schema: { type: "string", maxLength: 255 },
            description: "A retry within 10 minutes returns the first decision, not charged again",
          },
        ],
        requestBody: {
          content: {
            "application/json": {
              schema: {
                type: "object",
                properties: {
                  key: { type: "string" },
                  tokens: { type: "integer", minimum: 0, maximum: 1_000_000_000, default: 1 },
                  requestId: { type: "string" },
                },
              },
            },
          },
        },
        responses: {
          "200": { ...json(ref("RateDecision"), "Allowed"), headers: rateLimitHeaders },
          "429": {
            ...json(ref("RateDecision"), "Denied (a decision, not an error)"),
            headers: { ...rateLimitHeaders, "Retry-After": { schema: { type: "string" } } },
          },
          "400": error("Malformed request"),
          "404": error("No applicable bucket"),
          "409": error("Idempotency key reused for another request"),
          "413": error("Body too large"),
          "415": error("Not JSON"),
          "503": error("The store is unavailable; nothing was charged"),
        },
      },
    },
    "/status/{key}": {
      get: {
        operationId: "status",
        parameters: [key],
        responses: {
          "200": json(ref("Status"), "The bucket as this region sees it"),
          "400": error("Bad key"),
          "404": error("No such bucket"),
          "503": error("Store unavailable"),
        },
      },
    },
    "/health": { get: { operationId: "health", responses: { "200": json(ref("Health"), "Alive") } } },
    "/openapi.json": { get: { operationId: "openapi", responses: { "200": json({ type: "object" }, "This document") } } },
    "/buckets/{key}": {
      get: {
        operationId: "getBucket",
        parameters: [key],
        responses: {
          "200": json(ref("Bucket"), "The bucket"),
          "400": error("Bad key"),
          "404": error("No such bucket"),
          "503": error("Store unavailable"),
        },
      },
      put: {
        operationId: "putBucket",
        parameters: [key],
        requestBody: {
          required: true,
          content: {
            "application/json": {
              schema: { type: "object", required: ["capacity", "refillRate"], additionalProperties: false, properties: limits },
            },
          },
        },
        responses: {
          "200": json(ref("Bucket"), "Replaced"),
          "201": json(ref("Bucket"), "Created"),
          "400": error("Invalid configuration"),
          "409": error("Changed concurrently"),
          "415": error("Not JSON"),
          "503": error("Store unavailable"),
        },
      },
      patch: {
        operationId: "patchBucket",
        parameters: [key],
        requestBody: {
          required: true,
          content: {
            "application/json": { schema: { type: "object", minProperties: 1, additionalProperties: false, properties: limits } },
          },
        },
        responses: {
          "200": json(ref("Bucket"), "Changed"),
          "400": error("Invalid change"),
          "404": error("No such bucket"),
          "409": error("Changed concurrently"),
          "415": error("Not JSON"),
          "503": error("Store unavailable"),
        },
      },
      delete: {
        operationId: "deleteBucket",
        parameters: [key],
        responses: {
          "204": { description: "Deleted" },
          "400": error("Bad key"),
          "404": error("No such bucket"),
          "503": error("Store unavailable"),
        },
      },
    },
    "/buckets/{key}/history": {
      get: {
        operationId: "bucketHistory",
        parameters: [key],
        responses: { "200": json(ref("History"), "The audit trail"), "400": error("Bad key"), "404": error("No history") },
      },
    },
  },
  components: {
    schemas: {
      Error: {
        type: "object",
        additionalProperties: false,
        required: ["error"],
        properties: {
          error: {
            type: "object",
            additionalProperties: false,
            required: ["code", "message"],
            properties: {
              code: { type: "string" },
              message: { type: "string" },
              missing: { type: "array", items: { type: "string" } },
              allow: { type: "string" },
            },
          },
        },
      },
      BucketDecision: bucketDecision,
      RateDecision: {
        type: "object",
        additionalProperties: false,
        required: [...bucketDecision.required, "region", "buckets"],
        properties: {
          ...bucketDecision.properties,
          region: { type: "string" },
          failOpen: { type: "boolean" },
          buckets: { type: "array", items: ref("BucketDecision"), minItems: 1 },
        },
      },
      Status: {
        type: "object",
        additionalProperties: false,
        required: [
          "key",
          "capacity",
          "refillRate",
          "tokens",
          "resetAfterMs",
          "source",
          "region",
          "regions",
          "syncLagMs",
          "degraded",
          "unreachable",
        ],
        properties: {
          key: { type: "string" },
          capacity: { type: "integer" },
          refillRate: { type: "number" },
          tokens: { type: "integer", minimum: 0 },
          resetAfterMs: nullableInt,
          source: { enum: ["override", "rule"] },
          region: { type: "string" },
          scaling: {
            type: "object",
            additionalProperties: false,
            required: ["by", "since", "configured"],
            properties: {
              by: { enum: ["forecaster:grow", "forecaster:throttle"] },
              since: { type: "string", format: "date-time" },
              configured: {
                type: "object",
                additionalProperties: false,
                required: ["capacity", "refillRate"],
                properties: { capacity: { type: "integer" }, refillRate: { type: "number" } },
              },
            },
          },
          regions: {
            type: "array",
            items: {
              type: "object",
              additionalProperties: false,
              required: ["region", "tokens", "share", "rateShare", "capacity", "ageMs"],
              properties: {
                region: { type: "string" },
                tokens: { type: "integer" },
                share: { type: "number" },
                rateShare: { type: "number" },
                capacity: { type: "integer" },
                ageMs: { type: "number" },
              },
            },
          },
          syncLagMs: { type: "number" },
          degraded: { type: "boolean" },
          unreachable: { type: "array", items: { type: "string" } },
        },
      },
      Bucket: {
        type: "object",
        additionalProperties: false,
        required: ["key", "capacity", "refillRate", "onError", "source"],
        properties: {
          key: { type: "string" },
          ...limits,
          source: { enum: ["override", "rule"] },
          rule: { type: "string" },
          version: { type: "integer" },
          updatedAt: { type: "string" },
          updatedBy: { type: "string" },
        },
      },
      History: {
        type: "object",
        additionalProperties: false,
        required: ["key", "history"],
        properties: {
          key: { type: "string" },
          history: {
            type: "array",
            items: {
              type: "object",
              additionalProperties: false,
              required: ["key", "version", "at", "by", "region", "inherit", "old", "new"],
              properties: {
                key: { type: "string" },
                version: { type: "integer" },
                at: { type: "integer" },
                by: { type: "string" },
                region: { type: "string" },
                inherit: limits.inherit,
                old: { oneOf: [{ type: "null" }, ref("Limits")] },
                new: ref("Limits"),
              },
            },
          },
        },
      },
      Limits: {
        type: "object",
        additionalProperties: false,
        required: ["capacity", "refillRate", "onError"],
        properties: { capacity: limits.capacity, refillRate: limits.refillRate, ttl: limits.ttl, onError: limits.onError },
      },
      Health: {
        type: "object",
        additionalProperties: false,
        required: ["status", "region"],
        properties: { status: { const: "ok" }, region: { type: "string" } },
      },
    },
  },
} as const;
