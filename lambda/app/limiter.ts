/**
 * The rate-limit use case: resolve the buckets that apply to a request, take from each
 * region-local slice all-or-nothing with one conditional write, and return a decision.
 *
 * Steady state costs exactly one write: slices are cached per instance and every write
 * re-checks its cached assumptions in its condition; a failed condition returns the real
 * row, which tells a true denial from a stale cache.
 */
import {
  type BucketDecision,
  decodeDecision,
  describe,
  encodeDecision,
  mostConstrainingFirst,
  type RateDecision,
} from "../core/decision.js";
import { type DemandEstimate, demandAt, observeDemand } from "../core/demand.js";
import { ConflictError, NotFoundError, StoreUnavailableError, ValidationError } from "../core/errors.js";
import { initialShares, merge } from "../core/escrow.js";
import { assertValidKey } from "../core/keys.js";
import type { BucketLimits } from "../core/limits.js";
import { toSliceParams } from "../core/limits.js";
import { matchRules, type Rule } from "../core/rules.js";
import { applyTake, judgeFailure, level, newSlice, planTake, rebase, sliceCapacity } from "../core/slice.js";
import { TOKEN } from "../core/units.js";
import type { BucketStore, LimitSource, StoredSlice, TakeItem } from "../ports/bucket-store.js";
import type { Clock } from "../ports/clock.js";
import type { PeerTransfer } from "../ports/peer-transfer.js";
import { adjustOwnRow } from "./adjust.js";
import { newOwnRow } from "./new-row.js";
import { initialShare, singleRegion, type Topology } from "./topology.js";

/** A request to take tokens. */
export interface RateRequest {
  /** The body's `key`, if any. */
  readonly key?: string | undefined;
  /** Whole tokens to take (0 = only read). */
  readonly tokens: number;
  /** Request headers, names lower-cased. */
  readonly headers: Readonly<Record<string, string | undefined>>;
  /**
   * An idempotency key (`Idempotency-Key` header or body `requestId`): a retry within the
   * window returns the first decision and is not charged again.
   */
  readonly idempotencyKey?: string | undefined;
}

/** How long an idempotency key is remembered. */
export const IDEMPOTENCY_WINDOW_MS = 10 * 60 * 1000;

/** Dependencies of {@link Limiter}. */
export interface LimiterDeps {
  readonly store: BucketStore;
  readonly clock: Clock;
  readonly rules: readonly Rule[];
  /** The regions sharing every bucket. @default this store's region alone */
  readonly topology?: Topology;
  /** Borrow from a peer when a slice runs dry (ARCHITECTURE.md §3). @default off */
  readonly borrow?: BorrowOptions;
  /** Publish denied demand at most this often per key, ms. @default 100 */
  readonly demandFlushMs?: number;
  /** Slices cached per instance. @default 10000 */
  readonly cacheSize?: number;
  /** Conditional-write attempts per decision before giving up with 503. @default 8 */
  readonly maxAttempts?: number;
  /**
   * Deny from memory, without a write, while the cached row is younger than this and shows too
   * few tokens (ms; 0 turns it off). Safe: between two reads only takes write a slice, and
   * takes only lower it, so a cached level is an upper bound; a merge or a config change that
   * adds tokens is seen at most this late. @default 100
   */
  readonly denyCacheMs?: number;
}

interface Target {
  readonly key: string;
  /** The rule that produced it (absent: an explicit key, which must exist). */
  readonly rule?: Rule | undefined;
}

/** Borrow settings. */
export interface BorrowOptions {
  readonly transfer: PeerTransfer;
  /** How long the request that found the slice dry may wait for a borrow, ms (0: never waits). @default 150 */
  readonly budgetMs?: number;
  /** Back-off after a refused or failed borrow, ms, doubling up to `maxBackoffMs`. @default 500 */
  readonly backoffMs?: number;
  /** @default 8000 */
  readonly maxBackoffMs?: number;
}

/** How long a rewrite may hold a slice frozen, µs. */
export const FREEZE_US = 2_000_000n;

/** Decides rate requests for one region. */
export class Limiter {
  /** Decisions made, store calls they needed, and how many needed exactly one (or none: deny cache). */
  readonly stats = { decisions: 0, calls: 0, oneCall: 0, noCall: 0 };
  private readonly cache = new Map<string, StoredSlice>();
  /** When each cached row was read from the store (µs). */
  private readonly seen = new Map<string, bigint>();
  private readonly deps: LimiterDeps;
  private readonly topology: Topology;
  /** Borrow state per key: no new borrow before `untilUs`; the current back-off; one borrow at a time. */
  private readonly borrowing = new Map<string, { untilUs: bigint; backoffMs: number; inFlight?: Promise<boolean> | undefined }>();
  /** This instance's demand estimate per key (tokens/s), for borrow requests. */
  private readonly demand = new Map<string, { requested: bigint; estimate?: DemandEstimate | undefined }>();
  /** Denied aT not yet published, and when each key was last published (µs). */
  private readonly deniedBacklog = new Map<string, { amount: bigint; flushedUs: bigint }>();

  constructor(deps: LimiterDeps) {
    this.deps = deps;
    this.topology = deps.topology ?? singleRegion(deps.store.region);
  }

  /**
   * Decides a request.
   * @throws {ValidationError} `request.invalid_key`, `request.missing_header`
   * @throws {NotFoundError} `bucket.not_found`
   * @throws {StoreUnavailableError} unless every bucket fails open
   */
  async rate(request: RateRequest): Promise<RateDecision & { replayed?: boolean }> {
    const targets = this.targets(request);
    let idem: { id: string; fingerprint: string } | undefined;
    if (request.idempotencyKey !== undefined) {
      const id = request.idempotencyKey;
      if (!/^[\x21-\x7e]{1,255}$/.test(id)) {
        throw new ValidationError(
          "request.invalid_idempotency_key",
          "the idempotency key must be 1–255 printable ASCII characters without spaces",
        );
      }
      const fingerprint = `${request.tokens}|${targets
        .map((t) => t.key)
        .sort()
        .join("|")}`;
      const prior = await this.deps.store.getIdempotency(id);
      if (prior && prior.expiresAtMs > Number(this.deps.clock.nowUs() / 1000n)) {
        if (prior.fingerprint !== fingerprint) {
          throw new ConflictError(
            "request.idempotency_mismatch",
            "this idempotency key was used for a different request (other tokens or buckets)",
          );
        }
        return { ...decodeDecision(prior.decision), replayed: true };
      }
      idem = { id, fingerprint };
    }
    try {
      return await this.decide(targets, request.tokens, idem);
    } catch (error) {
      if (!(error instanceof StoreUnavailableError)) throw error;
      const limits = targets.map((t) => this.cache.get(t.key)?.limits ?? t.rule?.limits);
      if (limits.length > 0 && limits.every((l) => l?.onError === "allow")) {
        return { allowed: true, failOpen: true, buckets: failOpenDecisions(targets, limits as BucketLimits[], request.tokens) };
      }
      throw error;
    }
  }

  private targets(request: RateRequest): Target[] {
    if (request.key !== undefined) assertValidKey(request.key);
    const { matches, missing } = matchRules(this.deps.rules, { key: request.key, headers: request.headers });
    const targets = new Map<string, Target>();
    if (request.key !== undefined) targets.set(request.key, { key: request.key });
    for (const m of matches) {
      assertValidKey(m.key, `key rendered by rule "${m.rule.name}"`);
      if (!targets.get(m.key)?.rule) targets.set(m.key, { key: m.key, rule: m.rule });
    }
    if (targets.size === 0) {
      if (missing.length > 0) {
        throw new ValidationError("request.missing_header", `no rule applies: missing header ${missing.map((h) => `"${h}"`).join(", ")}`, {
          details: { missing },
        });
      }
      throw new NotFoundError("bucket.not_found", "no rule applies to this request and it names no bucket key");
    }
    return [...targets.values()];
  }

  private async decide(
    wanted: readonly Target[],
    tokens: number,
    idem?: { id: string; fingerprint: string },
  ): Promise<RateDecision & { replayed?: boolean }> {
    const ctx = { calls: 0, idem };
    try {
      const decision = await this.decideCounted(wanted, tokens, ctx);
      // A denial charges nothing, but a retry should get the same answer: remember it too.
      if (idem && !decision.allowed && !decision.replayed) {
        ctx.calls++;
        if ((await this.deps.store.putIdempotency(this.record(idem, decision))) === "exists") {
          const prior = await this.deps.store.getIdempotency(idem.id);
          if (prior) return { ...decodeDecision(prior.decision), replayed: true };
        }
      }
      return decision;
    } finally {
      this.stats.decisions++;
      this.stats.calls += ctx.calls;
      if (ctx.calls === 1) this.stats.oneCall++;
      if (ctx.calls === 0) this.stats.noCall++;
    }
  }

  private async decideCounted(
    wanted: readonly Target[],
    tokens: number,
    ctx: { calls: number; idem?: { id: string; fingerprint: string } | undefined },
  ): Promise<RateDecision & { replayed?: boolean }> {
    const { store, clock } = this.deps;
    const targets: Target[] = [];
    for (const target of wanted) {
      if ((await this.load(target, ctx)) !== undefined) targets.push(target);
    }
    if (targets.length === 0) {
      throw new NotFoundError("bucket.not_found", `no bucket "${wanted[0]?.key}": create it with PUT /buckets/{key} or a rule`);
    }
    const amount = BigInt(tokens) * TOKEN;
    // Only borrow requests carry this instance's demand estimate: no work on the hot path without it.
    if (this.deps.borrow) for (const t of targets) this.observeDemand(t.key, amount);
    const maxAttempts = this.deps.maxAttempts ?? 8;
    let borrowed = false;
    let confirmed = false;
    let frozenWaits = 0;
    for (let attempt = 0; attempt < maxAttempts; attempt++) {
      const slices = await Promise.all(targets.map((t) => this.load(t, ctx)));
      if (slices.some((s) => s === undefined)) throw new NotFoundError("bucket.not_found", "the bucket was deleted");
      const rows = slices as StoredSlice[];
      const now = clock.nowUs();

      const frozen = rows.find((s) => s.frozenUntilUs !== undefined);
      if (frozen) {
        // An admin rewrite holds the row for about one round trip: wait, do not poll hard.
        if (now < (frozen.frozenUntilUs as bigint)) {
          await clock.sleep(Math.min(20, 5 * 2 ** frozenWaits));
          frozenWaits++;
          attempt--; // waiting on a freeze is not a failed attempt (the freeze expires on its own)
        } else {
          ctx.calls++;
          await store.cancelFreeze(frozen.key, frozen.version);
        }
        this.cache.delete(frozen.key);
        continue;
      }
      const bucketCap = (s: StoredSlice) => s.capacity * TOKEN;
      if (rows.some((s) => amount > bucketCap(s))) {
        if (!confirmed) {
          // The cache may predate a capacity change: confirm from the store (only oversize requests pay this read).
          confirmed = true;
          for (const s of rows) this.cache.delete(s.key);
          continue;
        }
        return verdict(
          rows.map((s) =>
            describe(
              s.key,
              s,
              s.limits,
              tokens,
              now,
              amount > bucketCap(s) ? { allowed: false, reason: "exceeds_capacity" } : { allowed: true },
            ),
          ),
          false,
        );
      }
      if (rows.some((s) => amount > sliceCapacity(s))) {
        // Within the bucket but beyond this region's slice: insufficient here for now.
        this.noteDenied(rows, amount, now);
        if (
          !borrowed &&
          (await this.borrowFor(
            rows.filter((r) => amount > sliceCapacity(r)),
            ctx,
          ))
        ) {
          borrowed = true;
          attempt--;
          continue;
        }
        return verdict(
          rows.map((s) =>
            describe(
              s.key,
              s,
              s.limits,
              tokens,
              now,
              level(s, now) >= amount ? { allowed: true } : { allowed: false, reason: "insufficient" },
            ),
          ),
          false,
        );
      }
      if (amount === 0n) {
        ctx.calls += rows.length;
        const fresh = await Promise.all(rows.map((s) => store.getSlice(s.key)));
        return verdict(
          fresh.map((s, i) => {
            const row = s ?? (rows[i] as StoredSlice);
            this.remember(row);
            return describe(row.key, row, row.limits, 0, now, { allowed: true });
          }),
          false,
        );
      }

      if (this.deniedFromCache(rows, amount, now)) {
        this.noteDenied(rows, amount, now);
        if (
          !borrowed &&
          (await this.borrowFor(
            rows.filter((r) => level(r, now) < amount),
            ctx,
          ))
        ) {
          borrowed = true;
          attempt--;
          continue;
        }
        return verdict(
          rows.map((row) => {
            const enough = level(row, now) >= amount;
            return describe(row.key, row, row.limits, tokens, now, enough ? { allowed: true } : { allowed: false, reason: "insufficient" });
          }),
          false,
        );
      }
      const expires = this.topology.regions.length === 1;
      const items: TakeItem[] = rows.map((s) => ({
        key: s.key,
        plan: planTake(s, amount, now),
        nowUs: now,
        expiresAt: expires ? expiry(s.limits, now) : undefined,
      }));
      ctx.calls++;
      // With an idempotency key, the decision (as planned on the cached rows) is recorded in the
      // same transaction as the take: a retry can never be charged twice.
      const record = ctx.idem
        ? this.record(
            ctx.idem,
            verdict(
              rows.map((r, i) =>
                describe(r.key, { ...r, ...(applyTake(r, (items[i] as TakeItem).plan) ?? r) }, r.limits, tokens, now, { allowed: true }),
              ),
              false,
            ),
          )
        : undefined;
      const outcome = await store.take(items, record);
      if (!outcome.ok && "duplicate" in outcome && ctx.idem) {
        const prior = await store.getIdempotency(ctx.idem.id);
        if (prior) return { ...decodeDecision(prior.decision), replayed: true };
      }
      if (outcome.ok) {
        for (const s of outcome.slices) this.remember(s);
        return verdict(
          outcome.slices.map((s) => describe(s.key, s, s.limits, tokens, now, { allowed: true })),
          false,
        );
      }
      let denied = false;
      outcome.actual.forEach((actual, i) => {
        const key = rows[i]?.key as string;
        if (actual === null) this.cache.delete(key);
        else if (actual !== undefined) {
          this.remember(actual);
          if (actual.frozenUntilUs === undefined && judgeFailure(actual, amount, now).kind === "insufficient") denied = true;
        }
      });
      if (denied) {
        this.noteDenied(rows, amount, now);
        const dry = outcome.actual.filter((a): a is StoredSlice => !!a && judgeFailure(a, amount, now).kind === "insufficient");
        if (!borrowed && (await this.borrowFor(dry, ctx))) {
          borrowed = true;
          attempt--;
          continue;
        }
        return verdict(
          rows.map((cached, i) => {
            const row = outcome.actual[i] ?? cached;
            const enough = judgeFailure(row, amount, now).kind !== "insufficient";
            return describe(row.key, row, row.limits, tokens, now, enough ? { allowed: true } : { allowed: false, reason: "insufficient" });
          }),
          false,
        );
      }
    }
    throw new StoreUnavailableError("store.contended", "the bucket is too contended to decide right now; retry");
  }

  /** The cached slice, or the stored one, created from the config or rule if it does not exist. */
  private async load(target: Target, ctx: { calls: number }): Promise<StoredSlice | undefined> {
    const cached = this.cache.get(target.key);
    if (cached) return cached;
    const { store, clock } = this.deps;
    ctx.calls++;
    let slice = await store.getSlice(target.key);
    if (!slice) {
      ctx.calls += 2;
      const config = await store.getConfig(target.key);
      const limits = config?.limits ?? target.rule?.limits;
      if (!limits) return undefined;
      const source: LimitSource = config ? { kind: "override", version: config.version } : { kind: "rule", rule: target.rule?.name ?? "" };
      let peers: StoredSlice[] = [];
      if (this.topology.regions.length > 1) {
        ctx.calls++;
        peers = await store.querySlices(target.key);
      }
      slice = await store.createSlice(newOwnRow(target.key, this.topology, limits, source, clock.nowUs(), peers, config?.updatedAt));
    } else if (slice.source.kind === "rule" && target.rule && !sameLimits(slice.limits, target.rule.limits)) {
      // The rules file changed this rule's limits since the slice was created: carry it over.
      const limits = target.rule.limits;
      const now = clock.nowUs();
      ctx.calls += 3;
      slice =
        (await store.rewriteSlice(
          target.key,
          (frozen) => ({
            ...frozen,
            ...rebase(frozen, now, toSliceParams(limits, frozen.capShare, frozen.rateShare), "proportional"),
            limits,
          }),
          now + FREEZE_US,
        )) ?? slice;
    }
    this.remember(slice);
    return slice;
  }

  private observeDemand(key: string, amount: bigint): void {
    const entry = this.demand.get(key) ?? { requested: 0n };
    entry.requested += amount;
    entry.estimate = observeDemand(entry.estimate, entry.requested, this.deps.clock.nowUs(), 250_000);
    this.demand.set(key, entry);
    if (this.demand.size > (this.deps.cacheSize ?? 10_000)) this.demand.clear();
  }

  /**
   * Starts (or joins) a borrow for each dry slice, and waits for it within the latency budget.
   * True when a borrow landed in time for the caller to retry its take. A borrow is never
   * needed for safety: a failure only means "denied for now", and a back-off (0.5 s doubling to
   * 8 s) keeps a region from asking again and again.
   */
  private async borrowFor(dry: readonly StoredSlice[], ctx: { calls: number }): Promise<boolean> {
    const options = this.deps.borrow;
    if (!options || dry.length === 0 || this.topology.regions.length < 2) return false;
    const now = this.deps.clock.nowUs();
    const attempts: Promise<boolean>[] = [];
    for (const row of dry) {
      const state = this.borrowing.get(row.key) ?? { untilUs: 0n, backoffMs: 0 };
      this.borrowing.set(row.key, state);
      if (!state.inFlight) {
        if (now < state.untilUs) continue;
        ctx.calls++;
        state.inFlight = this.borrowOnce(row, options).then((ok) => {
          state.backoffMs = ok
            ? 0
            : Math.min(options.maxBackoffMs ?? 8000, state.backoffMs === 0 ? (options.backoffMs ?? 500) : state.backoffMs * 2);
          state.untilUs = this.deps.clock.nowUs() + BigInt(state.backoffMs) * 1000n;
          state.inFlight = undefined;
          return ok;
        });
      }
      attempts.push(state.inFlight);
    }
    if (attempts.length === 0) return false;
    const budget = options.budgetMs ?? 150;
    if (budget <= 0) return false;
    const all = Promise.all(attempts).then((oks) => oks.every(Boolean));
    return Promise.race([all, this.deps.clock.sleep(budget).then(() => false)]);
  }

  /** One borrow: ask the peer holding the most share, merge its answer into our row. */
  private async borrowOnce(row: StoredSlice, options: BorrowOptions): Promise<boolean> {
    const { store } = this.deps;
    try {
      const rows = await store.querySlices(row.key);
      // The peer holding the most share; a peer whose row we have not seen yet holds its initial share.
      const shares = initialShares(this.topology.regions, this.topology.weights);
      const shareOf = (region: string) => rows.find((r) => r.region === region)?.capShare ?? shares.get(region) ?? 0n;
      const lender = this.topology.regions
        .filter((r) => r !== this.topology.self)
        .sort((a, b) => (shareOf(a) > shareOf(b) ? -1 : shareOf(a) < shareOf(b) ? 1 : 0))[0];
      if (!lender) return false;
      const estimate = this.demand.get(row.key)?.estimate;
      const demand = estimate ? demandAt(estimate, this.deps.clock.nowUs(), 250_000) : 0;
      const own = rows.find((r) => r.region === this.topology.self) ?? row;
      const bucket = { limits: own.limits, source: own.source, ...(own.configAt === undefined ? {} : { configAt: own.configAt }) };
      const answer = await options.transfer.borrow(lender, { key: row.key, borrower: this.topology.self, demand, bucket });
      if (!answer.ok) return false;
      // Merge exactly as if the lender's replicated row had arrived: whichever comes second adds nothing.
      const out = await adjustOwnRow(this.deps, row.key, own, (r, at) => merge(r, lender, answer.given, at));
      if (out) this.remember(out.after);
      return out !== undefined;
    } catch {
      return false;
    }
  }

  /**
   * Publishes denied demand (the rebalancer's signal) at most every `demandFlushMs` per key,
   * without waiting for it: a lost flush only delays rebalancing.
   */
  private noteDenied(rows: readonly StoredSlice[], amount: bigint, now: bigint): void {
    const everyUs = BigInt(this.deps.demandFlushMs ?? 100) * 1000n;
    for (const row of rows) {
      const entry = this.deniedBacklog.get(row.key) ?? { amount: 0n, flushedUs: 0n };
      entry.amount += amount;
      this.deniedBacklog.set(row.key, entry);
      if (now - entry.flushedUs >= everyUs) {
        const pendingAmount = entry.amount;
        entry.amount = 0n;
        entry.flushedUs = now;
        this.deps.store.recordDenied(row.key, pendingAmount, now).catch(() => undefined);
      }
    }
    if (this.deniedBacklog.size > (this.deps.cacheSize ?? 10_000)) this.deniedBacklog.clear();
  }

  private record(idem: { id: string; fingerprint: string }, decision: RateDecision) {
    return {
      id: idem.id,
      fingerprint: idem.fingerprint,
      decision: encodeDecision(decision),
      expiresAtMs: Number(this.deps.clock.nowUs() / 1000n) + IDEMPOTENCY_WINDOW_MS,
    };
  }

  /** Whether a fresh-enough cached row already shows too few tokens. */
  private deniedFromCache(rows: readonly StoredSlice[], amount: bigint, now: bigint): boolean {
    const ttlUs = BigInt(this.deps.denyCacheMs ?? 100) * 1000n;
    return rows.some((row) => {
      const seen = this.seen.get(row.key);
      return seen !== undefined && now - seen <= ttlUs && level(row, now) < amount;
    });
  }

  private remember(slice: StoredSlice): void {
    const max = this.deps.cacheSize ?? 10_000;
    this.cache.delete(slice.key);
    this.cache.set(slice.key, slice);
    this.seen.set(slice.key, this.deps.clock.nowUs());
    if (this.cache.size > max) {
      const oldest = this.cache.keys().next();
      if (!oldest.done) {
        this.cache.delete(oldest.value);
        this.seen.delete(oldest.value);
      }
    }
  }
}

/** A new, full slice holding this region's initial share of the bucket. */
export function makeSlice(
  key: string,
  topology: Topology,
  limits: BucketLimits,
  source: LimitSource,
  nowUs: bigint,
  configAt?: number,
): StoredSlice {
  const share = initialShare(topology);
  return {
    ...newSlice(toSliceParams(limits, share, share), nowUs),
    key,
    region: topology.self,
    limits,
    source,
    configAt,
    consumed: 0n,
    requested: 0n,
    denied: 0n,
    heartbeatUs: nowUs,
    gives: {},
    takes: {},
  };
}

/** TTL attribute for a take: `ttl` seconds after the slice could be full again (never before). */
export function expiry(limits: BucketLimits, nowUs: bigint): number | undefined {
  if (limits.ttl === undefined) return undefined;
  const nowS = Number(nowUs / 1_000_000n) + 1;
  const fill = limits.refillRate > 0 ? Math.ceil(limits.capacity / limits.refillRate) : 0;
  return nowS + fill + limits.ttl;
}

function sameLimits(a: BucketLimits, b: BucketLimits): boolean {
  return a.capacity === b.capacity && a.refillRate === b.refillRate && a.ttl === b.ttl && a.onError === b.onError;
}

function verdict(buckets: BucketDecision[], failOpen: boolean): RateDecision {
  return { allowed: buckets.every((b) => b.allowed), buckets: mostConstrainingFirst(buckets), failOpen };
}

function failOpenDecisions(targets: readonly Target[], limits: readonly BucketLimits[], tokens: number): BucketDecision[] {
  return targets.map((t, i) => {
    const l = limits[i] as BucketLimits;
    return {
      key: t.key,
      allowed: true,
      tokens,
      remaining: 0n,
      capacity: l.capacity,
      refillRate: l.refillRate,
      retryAfterUs: 0n,
      resetAfterUs: null,
    };
  });
}
