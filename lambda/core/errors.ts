/**
 * The few named errors of tokenbank. Each carries a stable, machine-readable `code`
 * (e.g. `request.invalid_tokens`) that clients can switch on; one middleware maps them to
 * HTTP. A denial is never an error: it is a {@link Decision}.
 */

/** Base class: a stable `code`, a human `message`, optional structured `details`. */
export abstract class TokenBankError extends Error {
  abstract readonly kind: "invalid" | "not_found" | "conflict" | "too_large" | "unsupported_media" | "unavailable" | "cap_reached";
  readonly code: string;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: string, message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options?.details;
    this.name = new.target.name;
  }
}

/** The request (or a config file) is malformed. HTTP 400 (405 for `route.method_not_allowed`). */
export class ValidationError extends TokenBankError {
  readonly kind = "invalid" as const;
}

/** A bucket or route does not exist. HTTP 404. */
export class NotFoundError extends TokenBankError {
  readonly kind = "not_found" as const;
}

/** The request conflicts with the current state. HTTP 409. */
export class ConflictError extends TokenBankError {
  readonly kind = "conflict" as const;
}

/** The body is larger than the API takes. HTTP 413. */
export class PayloadTooLargeError extends TokenBankError {
  readonly kind = "too_large" as const;
}

/** The body is not JSON. HTTP 415. */
export class UnsupportedMediaTypeError extends TokenBankError {
  readonly kind = "unsupported_media" as const;
}

/** A rule already has as many live buckets in this region as it may (`maxBuckets`): no new one is created. HTTP 429. */
export class BucketCapError extends TokenBankError {
  readonly kind = "cap_reached" as const;
}

/** The store is unreachable, throttled or contended: nothing was decided. HTTP 503. */
export class StoreUnavailableError extends TokenBankError {
  readonly kind = "unavailable" as const;
}
