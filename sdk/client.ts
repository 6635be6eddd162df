/**
 * The tokenbank client SDK.
 *
 * @example
 * const tb = new TokenBankClient({ endpoints: ["https://abc.execute-api.us-east-1.amazonaws.com", "https://def.execute-api.eu-central-1.amazonaws.com"], sigv4: {} });
 * const d = await tb.rate("agent-42", { tokens: 1 });
 * if (!d.allowed) await sleep(d.retryAfterMs ?? 1000);
 *
 * - A denial is a value (`allowed: false`), never an error.
 * - Network errors, timeouts and 5xx are retried with exponential backoff and full jitter
 *   (never a 429 decision, never another 4xx), honouring `Retry-After`, failing over to the next
 *   endpoint, within a per-call timeout and an overall deadline.
 * - Every `rate()` call carries an idempotency key (yours, or a fresh UUID), so its retries are
 *   charged at most once, also when an attempt timed out after the server had charged it.
 * - Optional SigV4 signing (the AWS SDK's signer) for IAM-protected endpoints.
 */
import { randomUUID } from "node:crypto";
import { Sha256 } from "@aws-crypto/sha256-js";
import { defaultProvider } from "@aws-sdk/credential-provider-node";
import { SignatureV4 } from "@smithy/signature-v4";

/** One bucket in a decision. */
export interface BucketResult {
  readonly key: string;
  readonly allowed: boolean;
  readonly reason?: "insufficient" | "exceeds_capacity";
  readonly tokens: number;
  readonly remaining: number;
  readonly capacity: number;
  readonly refillRate: number;
  readonly retryAfterMs: number | null;
  readonly resetAfterMs: number | null;
}

/** A decision, as `POST /rate` answers it. */
export interface RateResult extends BucketResult {
  readonly region: string;
  readonly failOpen?: boolean;
  readonly buckets: readonly BucketResult[];
  /** True when the server replayed the first decision of this idempotency key. */
  readonly replayed: boolean;
  /** Attempts it took (1 = no retry). */
  readonly attempts: number;
}

/** An error tokenbank answered with (4xx other than a 429 decision, or 5xx after all retries). */
export class TokenBankError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "TokenBankError";
  }
}

/** Options of {@link TokenBankClient}. */
export interface TokenBankClientOptions {
  /** Regional base URLs, preferred first; a failed attempt moves to the next. */
  readonly endpoints: readonly string[];
  /** One attempt's timeout, ms. @default 1000 */
  readonly timeoutMs?: number;
  /** The whole call's deadline, ms. @default 5000 */
  readonly deadlineMs?: number;
  /** Attempts per call. @default 4 */
  readonly maxAttempts?: number;
  /** Backoff base and cap, ms (full jitter). @default 50, 1000 */
  readonly baseDelayMs?: number;
  readonly maxDelayMs?: number;
  /** Sign requests with SigV4 (service `execute-api`); region from the endpoint unless given. */
  readonly sigv4?: { readonly region?: string; readonly credentials?: ConstructorParameters<typeof SignatureV4>[0]["credentials"] };
  /** For tests: the fetch to use, and the randomness of the jitter. */
  readonly fetch?: typeof fetch;
  readonly random?: () => number;
}

const RETRYABLE = (status: number) => status >= 500;

/** The tokenbank client. */
export class TokenBankClient {
  private readonly o: Required<Omit<TokenBankClientOptions, "sigv4" | "fetch" | "random">> & TokenBankClientOptions;
  private readonly doFetch: typeof fetch;
  private readonly random: () => number;
  private readonly signers = new Map<string, SignatureV4>();

  constructor(options: TokenBankClientOptions) {
    if (options.endpoints.length === 0) throw new RangeError("give at least one endpoint");
    this.o = { timeoutMs: 1000, deadlineMs: 5000, maxAttempts: 4, baseDelayMs: 50, maxDelayMs: 1000, ...options };
    this.doFetch = options.fetch ?? fetch;
    this.random = options.random ?? Math.random;
  }

  /** Takes `tokens` (default 1) from `key`'s buckets. A denial is returned, not thrown. */
  async rate(
    key: string | undefined,
    options: { tokens?: number; idempotencyKey?: string; headers?: Record<string, string> } = {},
  ): Promise<RateResult> {
    const idempotencyKey = options.idempotencyKey ?? randomUUID();
    const body = JSON.stringify({ ...(key === undefined ? {} : { key }), tokens: options.tokens ?? 1 });
    const { status, json, headers, attempts } = await this.call(
      "POST",
      "/rate",
      body,
      { ...options.headers, "idempotency-key": idempotencyKey },
      [200, 429],
    );
    return {
      ...(json as Omit<RateResult, "replayed" | "attempts">),
      replayed: headers.get("idempotent-replayed") === "true",
      attempts,
      allowed: status === 200,
    };
  }

  /** A bucket's status from the first endpoint that answers. */
  async status(key: string): Promise<Record<string, unknown>> {
    return (await this.call("GET", `/status/${encodeURIComponent(key)}`, undefined, {}, [200])).json as Record<string, unknown>;
  }

  /** The admin API. */
  readonly buckets = {
    get: async (key: string) => (await this.call("GET", `/buckets/${encodeURIComponent(key)}`, undefined, {}, [200])).json,
    put: async (key: string, config: Record<string, unknown>) =>
      (await this.call("PUT", `/buckets/${encodeURIComponent(key)}`, JSON.stringify(config), {}, [200, 201])).json,
    patch: async (key: string, change: Record<string, unknown>) =>
      (await this.call("PATCH", `/buckets/${encodeURIComponent(key)}`, JSON.stringify(change), {}, [200])).json,
    delete: async (key: string) => {
      await this.call("DELETE", `/buckets/${encodeURIComponent(key)}`, undefined, {}, [204]);
    },
  };

  private async call(method: string, path: string, body: string | undefined, extra: Record<string, string>, ok: number[]) {
    const started = Date.now();
    let lastError: unknown;
    for (let attempt = 0; attempt < this.o.maxAttempts; attempt++) {
      const endpoint = this.o.endpoints[attempt % this.o.endpoints.length] as string;
      const left = this.o.deadlineMs - (Date.now() - started);
      if (left <= 0) break;
      let retryAfterMs = 0;
      try {
        const init = await this.request(endpoint, method, path, body, extra);
        const res = await this.doFetch(`${endpoint}${path}`, { ...init, signal: AbortSignal.timeout(Math.min(this.o.timeoutMs, left)) });
        const text = await res.text();
        const json = text ? (JSON.parse(text) as unknown) : undefined;
        if (ok.includes(res.status)) return { status: res.status, json, headers: res.headers, attempts: attempt + 1 };
        const err = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
        lastError = new TokenBankError(res.status, err?.code ?? `http.${res.status}`, err?.message ?? `HTTP ${res.status}`);
        if (!RETRYABLE(res.status)) throw lastError;
        retryAfterMs = Number(res.headers.get("retry-after") ?? 0) * 1000;
      } catch (error) {
        if (error instanceof TokenBankError && !RETRYABLE(error.status)) throw error;
        lastError = error;
      }
      const backoff = this.random() * Math.min(this.o.maxDelayMs, this.o.baseDelayMs * 2 ** attempt);
      const wait = Math.max(backoff, retryAfterMs);
      if (Date.now() - started + wait >= this.o.deadlineMs) break;
      await new Promise((r) => setTimeout(r, wait));
    }
    if (lastError instanceof TokenBankError) throw lastError;
    throw new TokenBankError(
      0,
      "client.unavailable",
      `no endpoint answered within the deadline: ${String((lastError as Error)?.message ?? lastError)}`,
    );
  }

  private async request(
    endpoint: string,
    method: string,
    path: string,
    body: string | undefined,
    extra: Record<string, string>,
  ): Promise<RequestInit> {
    const url = new URL(path, endpoint);
    const headers: Record<string, string> = { host: url.host, ...(body ? { "content-type": "application/json" } : {}), ...extra };
    if (!this.o.sigv4) return { method, headers, body };
    const region = this.o.sigv4.region ?? /execute-api\.([a-z0-9-]+)\.amazonaws/.exec(url.host)?.[1];
    if (!region) throw new RangeError(`cannot tell the AWS region of ${endpoint}: give sigv4.region`);
    let signer = this.signers.get(region);
    if (!signer) {
      signer = new SignatureV4({
        service: "execute-api",
        region,
        credentials: this.o.sigv4.credentials ?? defaultProvider(),
        sha256: Sha256,
      });
      this.signers.set(region, signer);
    }
    const signed = await signer.sign({
      method,
      protocol: url.protocol,
      hostname: url.hostname,
      port: url.port ? Number(url.port) : undefined,
      path: url.pathname,
      headers,
      body,
    });
    return { method, headers: signed.headers as Record<string, string>, body };
  }
}

/**
 * A fetch-style middleware: rate-limits an app's own handler and sets the IETF RateLimit
 * headers on its responses (429 with `Retry-After` when denied).
 *
 * @example
 * const handler = withRateLimit(tb, (req) => req.headers.get("x-api-key") ?? "anonymous", app);
 */
export function withRateLimit(
  tb: TokenBankClient,
  keyOf: (req: Request) => string,
  handler: (req: Request) => Promise<Response>,
  options: { tokens?: (req: Request) => number } = {},
): (req: Request) => Promise<Response> {
  return async (req) => {
    const d = await tb.rate(keyOf(req), { tokens: options.tokens?.(req) ?? 1 });
    const headers = new Headers({
      "ratelimit-policy": `"${d.key}";q=${d.capacity}${d.refillRate > 0 ? `;w=${Math.ceil(d.capacity / d.refillRate)}` : ""}`,
      ratelimit: `"${d.key}";r=${d.remaining}${d.resetAfterMs === null ? "" : `;t=${Math.ceil(d.resetAfterMs / 1000)}`}`,
    });
    if (!d.allowed) {
      if (d.retryAfterMs !== null) headers.set("retry-after", String(Math.max(1, Math.ceil(d.retryAfterMs / 1000))));
      headers.set("content-type", "application/json");
      return new Response(JSON.stringify({ error: { code: "rate_limited", message: "too many requests" } }), { status: 429, headers });
    }
    const res = await handler(req);
    const out = new Response(res.body, res);
    headers.forEach((v, k) => {
      out.headers.set(k, v);
    });
    return out;
  };
}
