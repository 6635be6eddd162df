/**
 * The rate-limit use case: resolve the buckets that apply to a request, then run the pure
 * decision policy (`core/policy.ts`) as a short I/O loop: perform the step it asks for (a take,
 * a borrow, a read, a wait) and ask again, until it allows or denies.
 *
 * Steady state costs exactly one write: slices are cached per instance and every write
 * re-checks its cached assumptions in its condition; a failed condition returns the real
 * row, which tells a true denial from a stale cache.
 */
import { type BucketDecision, describe, mostConstrainingFirst, type RateDecision } from "../core/decision.js";
import { type DemandEstimate, demandAt, observeDemand } from "../core/demand.js";
import { BucketCapError, NotFoundError, StoreUnavailableError, ValidationError } from "../core/errors.js";
import { merge } from "../core/escrow.js";
import { assertValidKey } from "../core/keys.js";
import { expiredLeft, type Lease, planRefund, serveFromLease } from "../core/lease.js";
import type { BucketLimits } from "../core/limits.js";
import { expiryOf } from "../core/limits.js";
import { instantOf, nextStep, type PolicyRow, type RowVerdict } from "../core/policy.js";
import { matchRules, type Rule } from "../core/rules.js";
import { applyTake, judgeFailure, level, type TakePlan } from "../core/slice.js";
import { ceilDiv, TOKEN, WHOLE_SHARE } from "../core/units.js";
import type { BucketStore, LimitSource, StoredSlice, TakeItem } from "../ports/bucket-store.js";
import type { Clock } from "../ports/clock.js";
import type { PeerTransfer } from "../ports/peer-transfer.js";
import { adjustOwnRow } from "./adjust.js";
import { applyRule, sameLimits } from "./buckets.js";
import { claim, type IdempotencyClaim, type MaybeReplayed, recorded, recordOf, replay } from "./idempotency.js";
import { newOwnRow } from "./new-row.js";
import { singleRegion, type Topology } from "./topology.js";

export { IDEMPOTENCY_WINDOW_MS } from "./idempotency.js";

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
  /** Who is asking (the IAM principal or JWT subject): idempotency records are scoped to it. */
  readonly caller?: string | undefined;
}

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
  /**
   * Take writes per decision before giving up with 503 `store.contended`. Takes racing takes
   * need at most 2 (see `core/policy.ts`); each background write landing meanwhile may add 2.
   * @default 6
   */
  readonly maxWrites?: number;
  /**
   * Deny from memory, without a write, while the cached row is younger than this and shows too
   * few tokens (ms; 0 turns it off). Safe: between two reads only takes write a slice, and
   * takes only lower it, so a cached level is an upper bound; a merge or a config change that
   * adds tokens is seen at most this late. @default 100
   */
  readonly denyCacheMs?: number;
  /**
   * A lease's life, ms (0 turns leases off): on a key this instance serves often, a one-bucket
   * take may carry up to this long of the instance's demand, and the next requests are answered
   * from it without a write (`core/lease.ts`). Only while the slice stays at least half full.
   * @default 100
   */
  readonly leaseMs?: number;
}

interface Target {
  readonly key: string;
  /** The rule that produced it (absent: an explicit key, which must exist). */
  readonly rule?: Rule | undefined;
}

/** Borrow settings. */
export interface BorrowOptions {
  /** The calls to peers (a limiter only borrows). */
  readonly transfer: Pick<PeerTransfer, "borrow">;
  /** How long the request that found the slice dry may wait for a borrow, ms (0: never waits). @default 150 */
  readonly budgetMs?: number;
  /** Back-off after a refused or failed borrow, ms, doubling up to `maxBackoffMs`. @default 500 */
  readonly backoffMs?: number;
  /** @default 8000 */
  readonly maxBackoffMs?: number;
}

/** Why a take write failed: the writer that changed the row under it, or a concurrent take. */
export type TakeFailureCause = "take-race" | "frozen" | "denied" | `version:${string}`;

/** What this instance's decisions cost, for benchmarks and metrics. */
export interface LimiterStats {
  /** Decisions made. */
  decisions: number;
  /** Store calls they needed (reads, writes, borrow calls). */
  calls: number;
  /** Decisions that needed exactly one call / none (deny cache). */
  oneCall: number;
  noCall: number;
  /** Take writes, and decisions by how many take writes they needed (index = writes). */
  takeWrites: number;
  writesPerDecision: number[];
  /** Failed take writes by cause (`denied` is a true shortage, not contention). */
  failures: Record<string, number>;
  /**
   * Decisions answered from a lease (no call); whole tokens leased; leased tokens that ended
   * unused and went back to the slice, and those lost (the refund failed or was impossible).
   */
  leased: number;
  leaseTokens: number;
  leaseReturned: number;
  leaseUnused: number;
  /** Borrow rounds that asked peers (each asks every lender at once), and those whose answers were merged. */
  borrowRounds: number;
  borrowsLanded: number;
}

/** One bucket as the current decision sees it. */
interface Seen {
  slice: StoredSlice;
  /** Wall-clock µs when it was read or returned by the store. */
  atUs: bigint;
  confirmed: boolean;
}

/** Decides rate requests for one region. */
export class Limiter {
  readonly stats: LimiterStats = {
    decisions: 0,
    calls: 0,
    oneCall: 0,
    noCall: 0,
    takeWrites: 0,
    writesPerDecision: [],
    failures: {},
    leased: 0,
    leaseTokens: 0,
    leaseReturned: 0,
    leaseUnused: 0,
    borrowRounds: 0,
    borrowsLanded: 0,
  };
  private readonly cache = new Map<string, StoredSlice>();
  /** When each cached row was read from the store (µs). */
  private readonly seen = new Map<string, bigint>();
  private readonly deps: LimiterDeps;
  private readonly topology: Topology;
  /** Borrow state per key: no new borrow before `untilUs`; the current back-off; one borrow at a time. */
  private readonly borrowing = new Map<string, { untilUs: bigint; backoffMs: number; inFlight?: Promise<boolean> | undefined }>();
  /** aT of this instance's take writes in flight, per key (see `PolicyRow.pending`). */
  private readonly pending = new Map<string, bigint>();
  /** This instance's demand estimate per key (tokens/s), for borrow requests. */
  private readonly demand = new Map<string, { requested: bigint; estimate?: DemandEstimate | undefined }>();
  /** Denied aT not yet published, and when each key was last published (µs). */
  private readonly deniedBacklog = new Map<string, { amount: bigint; flushedUs: bigint }>();
  /** Tokens leased per key (see `core/lease.ts`), and the lease takes in flight. */
  private readonly leases = new Map<string, Lease>();
  private readonly leasing = new Map<string, Promise<unknown>>();

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
  async rate(request: RateRequest): Promise<MaybeReplayed> {
    const targets = this.targets(request);
    const idem: IdempotencyClaim | undefined =
      request.idempotencyKey === undefined
        ? undefined
        : claim(
            request.idempotencyKey,
            request.tokens,
            targets.map((t) => t.key),
            request.caller,
          );
    try {
      // The replay read is a store call like any other: when it fails, so does the decision, by the buckets' policy.
      const prior = idem ? await replay(this.deps.store, idem, this.nowMs()) : undefined;
      if (prior) return prior;
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

  /**
   * The buckets a request may be charged to: the body key (if any), and the buckets the rules
   * render: with a body key, the rules that use `{{ .Key }}` (used only when no bucket of that
   * name exists); without one, the rules that do not.
   */
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

  private async decide(wanted: readonly Target[], tokens: number, idem?: IdempotencyClaim): Promise<MaybeReplayed> {
    const ctx: Ctx = { calls: 0, writes: 0, idem };
    try {
      const leased = idem ? undefined : await this.fromLease(wanted, tokens);
      if (leased) return leased;
      const decision = await this.decideCounted(wanted, tokens, ctx);
      // A denial charges nothing, but a retry should get the same answer: remember it too.
      if (idem && !decision.allowed && !decision.replayed) {
        ctx.calls++;
        if ((await this.deps.store.putIdempotency(recordOf(idem, decision, this.nowMs()))) === "exists") {
          return (await recorded(this.deps.store, idem)) ?? decision;
        }
      }
      return decision;
    } finally {
      const s = this.stats;
      s.decisions++;
      s.calls += ctx.calls;
      s.takeWrites += ctx.writes;
      s.writesPerDecision[ctx.writes] = (s.writesPerDecision[ctx.writes] ?? 0) + 1;
      if (ctx.calls === 1) s.oneCall++;
      if (ctx.calls === 0) s.noCall++;
    }
  }

  /** The decision loop: the policy says what to do, this performs it, until an answer. */
  private async decideCounted(wanted: readonly Target[], tokens: number, ctx: Ctx): Promise<MaybeReplayed> {
    const { store, clock } = this.deps;
    const view = new Map<string, Seen>();
    const add = async (target: Target) => {
      const slice = await this.load(target, ctx);
      if (slice) view.set(target.key, { slice, atUs: this.seen.get(target.key) ?? 0n, confirmed: false });
    };
    // A body key names a bucket: when it exists, it alone is charged; the rules that render
    // `{{ .Key }}` apply only to keys that name no bucket (see docs/rules.md).
    const named = wanted.find((t) => t.rule === undefined);
    if (named) await add(named);
    if (view.size === 0) for (const target of wanted) if (target !== named) await add(target);
    if (view.size === 0) {
      throw new NotFoundError("bucket.not_found", `no bucket "${wanted[0]?.key}": create it with PUT /buckets/{key} or a rule`);
    }
    const keys = [...view.keys()];
    const amount = BigInt(tokens) * TOKEN;
    // Only borrow requests and leases use this instance's demand estimate: no work without them.
    if (this.deps.borrow || this.leaseUs > 0n) for (const key of keys) this.observeDemand(key, amount);
    const leaseKey = keys.length === 1 && !ctx.idem && this.leaseUs > 0n ? keys[0] : undefined;
    const fresh = (slice: StoredSlice) => {
      this.remember(slice);
      view.set(slice.key, { slice, atUs: clock.nowUs(), confirmed: true });
    };
    const reread = async (which: readonly string[]) => {
      ctx.calls += which.length;
      for (const slice of await Promise.all(which.map((k) => store.getSlice(k)))) {
        if (!slice) throw new NotFoundError("bucket.not_found", "the bucket was deleted");
        fresh(slice);
      }
    };
    const rowsNow = () => keys.map((k) => view.get(k) as Seen);
    let instant = clock.nowUs();
    let borrowed = false;
    let waits = 0;
    for (;;) {
      const wall = clock.nowUs();
      const rows = rowsNow();
      const step = nextStep({
        rows: rows.map((r) => ({ ...policyRow(r, wall), pending: this.pending.get(r.slice.key) ?? 0n })),
        amount,
        instantUs: instant,
        wallUs: wall,
        denyCacheUs: BigInt(this.deps.denyCacheMs ?? 100) * 1000n,
        writes: ctx.writes,
        maxWrites: this.deps.maxWrites ?? 6,
        borrowable: borrowed ? new Set() : this.borrowable(keys, wall),
        // One lease take in flight per key: the requests meanwhile wait for it (see fromLease).
        leaseExpected: leaseKey === undefined || this.leasing.has(leaseKey) ? undefined : this.leaseExpected(leaseKey, wall),
      });
      switch (step.kind) {
        case "wait":
          // An admin rewrite holds the row for about one round trip: wait, do not poll hard.
          await clock.sleep(Math.min(20, 5 * 2 ** waits++));
          await reread([step.key]);
          break;
        case "unfreeze":
          ctx.calls++;
          await store.cancelFreeze(step.key, step.version);
          await reread([step.key]);
          break;
        case "confirm":
          await reread(step.keys);
          break;
        case "read":
          await reread(keys);
          return verdict(rowsNow(), tokens, instant, () => "allowed");
        case "borrow":
          this.noteDenied(step.keys, amount, wall);
          borrowed = true;
          if (
            await this.borrowFor(
              step.keys.map((k) => (view.get(k) as Seen).slice),
              amount,
              instant,
              ctx,
            )
          ) {
            for (const k of step.keys) {
              const slice = this.cache.get(k);
              if (slice) view.set(k, { slice, atUs: this.seen.get(k) ?? wall, confirmed: true });
            }
            instant = clock.nowUs(); // a borrow is a deliberate wait, not a retry: plan at its end
          }
          break;
        case "deny": {
          const dry = keys.filter((_, i) => step.verdicts[i] === "insufficient");
          this.noteDenied(dry, amount, wall);
          return verdict(
            rows,
            tokens,
            instant,
            (i) => step.verdicts[i] as RowVerdict,
            (key) => this.borrowAfter(key, wall),
          );
        }
        case "give-up":
          throw new StoreUnavailableError("store.contended", "the bucket store kept rejecting writes; retry");
        case "take": {
          const outcome = await this.write(rows, step.plans, instant, tokens, ctx, step.lease);
          if ("decision" in outcome) return outcome.decision;
          outcome.actual.forEach((actual, i) => {
            if (actual === null) throw new NotFoundError("bucket.not_found", "the bucket was deleted");
            if (actual === undefined) return;
            this.countFailure(actual, step.plans[i] as TakePlan, amount, instant);
            fresh(actual);
          });
          break;
        }
      }
    }
  }

  /** One take write (all rows or none); with an idempotency key, its record in the same transaction. */
  private async write(
    rows: readonly Seen[],
    plans: readonly TakePlan[],
    instant: bigint,
    tokens: number,
    ctx: Ctx,
    lease = 0n,
  ): Promise<{ decision: MaybeReplayed } | { actual: readonly (StoredSlice | null | undefined)[] }> {
    const { store } = this.deps;
    const items: TakeItem[] = rows.map((r, i) => ({
      key: r.slice.key,
      plan: plans[i] as TakePlan,
      base: r.slice,
      nowUs: instantOf(r.slice, instant),
      // Every take, in every region, carries the TTL attribute: an idle row is forgotten (a lost
      // row's share is restored by the reconciler, and a region that lost its row starts at 0).
      expiresAt: expiryOf(r.slice.limits, instant),
    }));
    // The decision as planned on the rows, recorded with the take: a retry is never charged twice.
    const record = ctx.idem
      ? recordOf(
          ctx.idem,
          verdict(
            rows.map((r, i) => ({ ...r, slice: { ...r.slice, ...(applyTake(r.slice, plans[i] as TakePlan) ?? r.slice) } })),
            tokens,
            instant,
            () => "allowed",
          ),
          this.nowMs(),
        )
      : undefined;
    ctx.calls++;
    ctx.writes++;
    const amount = BigInt(tokens) * TOKEN + lease;
    for (const it of items) this.pending.set(it.key, (this.pending.get(it.key) ?? 0n) + amount);
    let outcome: Awaited<ReturnType<BucketStore["take"]>>;
    const call = store.take(items, record);
    const leaseKey = lease > 0n ? items[0]?.key : undefined;
    if (leaseKey !== undefined)
      this.leasing.set(
        leaseKey,
        call.catch(() => undefined),
      );
    try {
      outcome = await call;
    } finally {
      for (const it of items) {
        const left = (this.pending.get(it.key) ?? 0n) - amount;
        if (left > 0n) this.pending.set(it.key, left);
        else this.pending.delete(it.key);
      }
      if (leaseKey !== undefined) this.leasing.delete(leaseKey);
    }
    if (outcome.ok) {
      for (const s of outcome.slices) this.remember(s);
      const first = items[0];
      if (leaseKey !== undefined && first) {
        // The take applied on the real row, whose mark was at least the cached one: its mark is now at least the planned one.
        const planned = applyTake(first.base, first.plan)?.mark ?? first.base.mark;
        this.addLease(leaseKey, lease, first.nowUs, outcome.slices[0]?.version ?? first.base.version, planned);
      }
      const written = outcome.slices.map((slice) => ({ slice: this.withLeased(slice), atUs: 0n, confirmed: true }));
      return { decision: verdict(written, tokens, instant, () => "allowed") };
    }
    if ("duplicate" in outcome && ctx.idem) {
      const prior = await recorded(store, ctx.idem);
      if (prior) return { decision: prior };
    }
    return { actual: outcome.actual };
  }

  /** Counts a failed take by what changed the row under it. */
  private countFailure(actual: StoredSlice, plan: TakePlan, amount: bigint, instant: bigint): void {
    let cause: TakeFailureCause;
    if (actual.frozenUntilUs !== undefined) cause = "frozen";
    else if (actual.version !== plan.version) cause = `version:${actual.writer ?? "unknown"}`;
    else if (judgeFailure(actual, amount, instantOf(actual, instant)).kind === "insufficient") cause = "denied";
    else cause = "take-race";
    this.stats.failures[cause] = (this.stats.failures[cause] ?? 0) + 1;
  }

  /** µs until a borrow for `key` may bring tokens (its back-off, or now), or undefined when this region cannot borrow. */
  private borrowAfter(key: string, nowUs: bigint): bigint | undefined {
    if (!this.deps.borrow || this.topology.regions.length < 2) return undefined;
    const state = this.borrowing.get(key);
    if (!state) return 0n;
    // A borrow in flight lands within its budget; otherwise the back-off says when the next may start.
    if (state.inFlight) return BigInt(this.deps.borrow.budgetMs ?? 150) * 1000n;
    return state.untilUs > nowUs ? state.untilUs - nowUs : 0n;
  }

  /** The keys that may borrow now: borrow on, several regions, and not backing off (or one in flight to join). */
  private borrowable(keys: readonly string[], nowUs: bigint): Set<string> {
    if (!this.deps.borrow || this.topology.regions.length < 2) return new Set();
    return new Set(
      keys.filter((k) => {
        const state = this.borrowing.get(k);
        return !state || state.inFlight !== undefined || nowUs >= state.untilUs;
      }),
    );
  }

  private get leaseUs(): bigint {
    return BigInt(this.deps.leaseMs ?? 100) * 1000n;
  }

  /** aT this instance expects to need for `key` over a lease's life (whole tokens, rounded down). */
  private leaseExpected(key: string, nowUs: bigint): bigint {
    const perSecond = demandAt(this.demand.get(key)?.estimate, nowUs, 250_000);
    return BigInt(Math.floor((perSecond * Number(this.leaseUs)) / 1e6)) * TOKEN;
  }

  /**
   * Answers a one-bucket request from this instance's lease on the bucket, without a call: when
   * a lease take is in flight, after waiting for it. Undefined when no lease can serve it.
   */
  private async fromLease(wanted: readonly Target[], tokens: number): Promise<RateDecision | undefined> {
    if (this.leaseUs === 0n || tokens <= 0) return undefined;
    // The bucket the decision would charge alone: a named bucket that exists, else the one rule bucket.
    const named = wanted.find((t) => t.rule === undefined);
    const key = named && this.cache.has(named.key) ? named.key : wanted.length === 1 ? wanted[0]?.key : undefined;
    if (key === undefined || !this.cache.has(key)) return undefined;
    const amount = BigInt(tokens) * TOKEN;
    const serve = () => {
      const now = this.deps.clock.nowUs();
      const current = this.leases.get(key);
      if (current && (current.left === 0n || expiredLeft(current, now) > 0n)) this.endLease(key, current, now);
      const after = serveFromLease(this.leases.get(key), amount, now);
      const slice = this.cache.get(key);
      if (!after || !slice) return undefined;
      this.leases.set(key, after);
      this.stats.leased++;
      this.observeDemand(key, amount);
      return verdict([{ slice: this.withLeased(slice), atUs: now, confirmed: true }], tokens, now, () => "allowed");
    };
    const first = serve();
    if (first) return first;
    const inFlight = this.leasing.get(key);
    if (!inFlight) return undefined;
    await inFlight;
    return serve();
  }

  /** Records `extra` aT leased on `key` by a take at `atUs` that left the row's mark at least `markAfter`. */
  private addLease(key: string, extra: bigint, atUs: bigint, version: number, markAfter: bigint): void {
    // What the current lease still holds goes back first (a lease is never joined: each is returned on its own terms).
    const current = this.leases.get(key);
    if (current) this.endLease(key, current, atUs);
    this.leases.set(key, { left: extra, untilUs: atUs + this.leaseUs, version, markAfter });
    this.stats.leaseTokens += Number(extra / TOKEN);
    if (this.leases.size > (this.deps.cacheSize ?? 10_000)) {
      const oldest = this.leases.entries().next();
      if (!oldest.done && oldest.value[0] !== key) this.endLease(oldest.value[0], oldest.value[1], atUs);
    }
  }

  /**
   * Ends a lease: its leftover goes back to the slice by a refund write on the lease's version,
   * in the background (a failed or impossible refund only under-admits, and is counted).
   */
  private endLease(key: string, lease: Lease, nowUs: bigint): void {
    this.leases.delete(key);
    if (lease.left === 0n) return;
    const slice = this.cache.get(key);
    const plan = slice ? planRefund(slice, lease, nowUs) : undefined;
    const lost = (aT: bigint) => {
      this.stats.leaseUnused += Number(aT / TOKEN);
    };
    if (!plan) {
      lost(lease.left);
      return;
    }
    lost(lease.left - plan.amount);
    this.deps.store.refund(key, plan).then(
      (ok) => {
        if (!ok) {
          lost(plan.amount);
          return;
        }
        this.stats.leaseReturned += Number(plan.amount / TOKEN);
        const cached = this.cache.get(key);
        if (cached && cached.version === plan.version) this.cache.set(key, { ...cached, mark: cached.mark - plan.amount });
      },
      () => lost(plan.amount),
    );
  }

  /** The row as answers describe it: its level plus what this instance still holds leased. */
  private withLeased(slice: StoredSlice): StoredSlice {
    const lease = this.leases.get(slice.key);
    if (!lease || lease.left === 0n || this.deps.clock.nowUs() > lease.untilUs) return slice;
    return { ...slice, mark: slice.mark - lease.left };
  }

  private nowMs(): number {
    return Number(this.deps.clock.nowUs() / 1000n);
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
      // A rule's buckets are bounded: every new header value would otherwise make one more row.
      // The row records its claim's number (the reconciler's recount orders rows by it).
      let claimNo: number | false | undefined;
      if (!config && target.rule) {
        ctx.calls++;
        claimNo = await store.claimBucket(target.rule.name, target.rule.maxBuckets);
        if (claimNo === false) {
          throw new BucketCapError(
            "rule.bucket_cap_reached",
            `rule "${target.rule.name}" already has its ${target.rule.maxBuckets} live buckets in this region (maxBuckets); no new bucket is created until some expire (ttl ${target.rule.limits.ttl} s)`,
            { details: { rule: target.rule.name, maxBuckets: target.rule.maxBuckets } },
          );
        }
      }
      let peers: StoredSlice[] = [];
      if (this.topology.regions.length > 1) {
        ctx.calls++;
        peers = await store.querySlices(target.key);
      }
      slice = await store.createSlice({
        ...newOwnRow(target.key, this.topology, limits, source, clock.nowUs(), peers, config?.updatedAt),
        ...(claimNo ? { claim: claimNo } : {}),
      });
    } else if (slice.source.kind === "rule" && target.rule && !sameLimits(slice.limits, target.rule.limits)) {
      // The rules file changed this rule's limits since the slice was created: carry it over.
      ctx.calls += 3;
      slice = (await applyRule(this.deps, target.key, target.rule.limits)) ?? slice;
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
  private async borrowFor(dry: readonly StoredSlice[], amount: bigint, instant: bigint, ctx: { calls: number }): Promise<boolean> {
    const options = this.deps.borrow;
    if (!options || dry.length === 0) return false;
    const attempts: Promise<boolean>[] = [];
    for (const row of dry) {
      const state = this.borrowing.get(row.key) ?? { untilUs: 0n, backoffMs: 0 };
      this.borrowing.set(row.key, state);
      if (!state.inFlight) {
        ctx.calls++;
        state.inFlight = this.borrowOnce(row, amount, instant, options).then((ok) => {
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
    const budget = options.budgetMs ?? 150;
    if (budget <= 0) return false; // borrow in the background; this request does not wait
    const all = Promise.all(attempts).then((oks) => oks.every(Boolean));
    return Promise.race([all, this.deps.clock.sleep(budget).then(() => false)]);
  }

  /**
   * One borrow: ask every peer at once, each for what this region is short of (the request that
   * found it dry, its demand over the next second, and the share it lacks to hold the request at
   * all), then merge every answer into our row in one write. Each lender gives what it can spare
   * (an idle one, everything), so a dry region reaches every free token in one round trip.
   */
  private async borrowOnce(row: StoredSlice, amount: bigint, instant: bigint, options: BorrowOptions): Promise<boolean> {
    const { store } = this.deps;
    try {
      const rows = await store.querySlices(row.key);
      const own = rows.find((r) => r.region === this.topology.self) ?? row;
      const estimate = this.demand.get(row.key)?.estimate;
      const demand = estimate ? demandAt(estimate, this.deps.clock.nowUs(), 250_000) : 0;
      const need = borrowNeed(own, amount, instantOf(own, instant), demand);
      // A peer whose row shows no share has nothing to lend (its row replicates when it gets some).
      const lenders = this.topology.regions.filter(
        (r) => r !== this.topology.self && (rows.find((x) => x.region === r)?.capShare ?? 1n) > 0n,
      );
      if (lenders.length === 0) return false;
      const bucket = { limits: own.limits, source: own.source, ...(own.configAt === undefined ? {} : { configAt: own.configAt }) };
      const request = { key: row.key, borrower: this.topology.self, demand, ...need, bucket };
      this.stats.borrowRounds++;
      const answers = await Promise.all(
        lenders.map((lender) =>
          options.transfer.borrow(lender, request).then(
            (answer) => ({ lender, answer }),
            () => ({ lender, answer: { ok: false as const, reason: "unreachable" } }),
          ),
        ),
      );
      const given = answers.flatMap((a) => (a.answer.ok ? [{ lender: a.lender, given: a.answer.given }] : []));
      if (given.length === 0) return false;
      // Merge exactly as if the lenders' replicated rows had arrived: whichever comes second adds nothing.
      const out = await adjustOwnRow(
        this.deps,
        row.key,
        own,
        (r, at) => given.reduce((acc, g) => merge(acc, g.lender, g.given, at), r),
        "borrow",
      );
      if (out) this.remember(out.after);
      // Nothing left to merge although a lender gave: replication merged it first (a lag shorter
      // than the call). The share is here all the same; the next take reads the merged row.
      const landed = out !== undefined || answers.some((a) => a.answer.ok && a.answer.lent === true);
      if (!out && landed) this.cache.delete(row.key);
      if (landed) this.stats.borrowsLanded++;
      return landed;
    } catch {
      return false;
    }
  }

  /**
   * Publishes denied demand (the rebalancer's signal) at most every `demandFlushMs` per key,
   * without waiting for it: a lost flush only delays rebalancing.
   */
  private noteDenied(keys: readonly string[], amount: bigint, now: bigint): void {
    const everyUs = BigInt(this.deps.demandFlushMs ?? 100) * 1000n;
    for (const key of keys) {
      const entry = this.deniedBacklog.get(key) ?? { amount: 0n, flushedUs: 0n };
      entry.amount += amount;
      this.deniedBacklog.set(key, entry);
      if (now - entry.flushedUs >= everyUs) {
        const pendingAmount = entry.amount;
        entry.amount = 0n;
        entry.flushedUs = now;
        this.deps.store.recordDenied(key, pendingAmount, now).catch(() => undefined);
      }
    }
    if (this.deniedBacklog.size > (this.deps.cacheSize ?? 10_000)) this.deniedBacklog.clear();
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

interface Ctx {
  calls: number;
  /** Take writes made. */
  writes: number;
  readonly idem?: IdempotencyClaim | undefined;
}

/**
 * What a dry slice asks its peers for: the tokens it is short of for this request plus its
 * demand over the next second (whole tokens, at most the capacity), and the capacity share it
 * lacks to hold the request at all (ppm).
 */
export function borrowNeed(own: StoredSlice, amount: bigint, atUs: bigint, demand: number): { needTokens: number; needShare: number } {
  const short = amount - level(own, atUs);
  const shortTokens = short > 0n ? Number(short) / Number(TOKEN) : 0;
  const needTokens = Math.min(Number(own.capacity), shortTokens + Math.max(0, demand));
  // Room: the share whose capacity holds `amount` (rounded up), minus the share held.
  const room = ceilDiv(amount * WHOLE_SHARE, own.capacity * TOKEN) - own.capShare;
  return { needTokens, needShare: room > 0n ? Number(room) : 0 };
}

function policyRow(r: Seen, wallUs: bigint): PolicyRow {
  return {
    key: r.slice.key,
    slice: r.slice,
    capacity: r.slice.capacity,
    ageUs: wallUs - r.atUs,
    confirmed: r.confirmed,
    frozenUntilUs: r.slice.frozenUntilUs,
  };
}

/** The answer: every row described at the decision's instant with its verdict. */
function verdict(
  rows: readonly Seen[],
  tokens: number,
  instant: bigint,
  of: (i: number) => RowVerdict,
  borrowAfter: (key: string) => bigint | undefined = () => undefined,
): RateDecision {
  const buckets = rows.map((r, i) => {
    const v = of(i);
    return describe(
      r.slice.key,
      r.slice,
      r.slice.limits,
      tokens,
      instantOf(r.slice, instant),
      v === "allowed" ? { allowed: true } : { allowed: false, reason: v },
      r.slice.source.kind === "rule" ? r.slice.source.rule : undefined,
      v === "allowed" ? undefined : borrowAfter(r.slice.key),
    );
  });
  return { allowed: buckets.every((b) => b.allowed), buckets: mostConstrainingFirst(buckets), failOpen: false };
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
