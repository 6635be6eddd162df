/**
 * The reconciler (ARCHITECTURE.md §5): the same code on the EventBridge schedule, the local
 * scheduler and `tokenbank reconcile`. From this region's replica it snapshots every bucket's
 * rows; on a converged snapshot (nothing in flight) it verifies I1/I2 exactly and reports
 * violations loudly; it repairs this region's missing row, restores stranded share (home region,
 * quiet snapshots only), returns idle share toward the baseline, expires idle buckets, and evicts
 * a dead region when an operator asks. It only ever writes this region's own rows (I3).
 */
import { type Evictions, evictionShares, freeShares, withEvictions } from "../core/accounting.js";
import { checkInvariants, give, inFlight, type Violation } from "../core/escrow.js";
import type { Rule } from "../core/rules.js";
import { level, sliceCapacity } from "../core/slice.js";
import { WHOLE_SHARE } from "../core/units.js";
import type { BucketConfig, BucketStore, StoredSlice } from "../ports/bucket-store.js";
import type { Clock } from "../ports/clock.js";
import { silentTelemetry, type Telemetry } from "../ports/telemetry.js";
import { adjustOwnRow } from "./adjust.js";
import { applyConfig, applyRule, sameLimits } from "./buckets.js";
import { newOwnRow } from "./new-row.js";
import { forEachBucket } from "./paged.js";
import { initialShare, type Topology } from "./topology.js";

/** Options of one run. */
export interface ReconcileOptions {
  /** Report what would be done; write nothing. */
  readonly dryRun?: boolean;
  /** Evict this region: this region absorbs its share (operator-only; unsafe if it is alive). */
  readonly evict?: string | undefined;
  /** Evict even though the region was heard from recently. */
  readonly force?: boolean;
  /** A snapshot is quiet when no row was written for this long, ms. @default 10000 */
  readonly quietMs?: number;
  /** A region heard from within this is alive (evict refuses without force), ms. @default 180000 */
  readonly aliveMs?: number;
  /** A region idle this long returns its share above the baseline, ms. @default 60000 */
  readonly returnIdleAfterMs?: number;
  /** Stop fetching pages after this long and resume there next run, ms. @default unbounded (one whole pass) */
  readonly budgetMs?: number;
  /** Items per scan page. @default 1000 */
  readonly pageSize?: number;
  /** Buckets reconciled at once. @default 8 */
  readonly concurrency?: number;
  /** Keep every bucket's snapshot in the report (the CLI's table). @default true */
  readonly snapshots?: boolean;
}

/** One thing the reconciler did, or would do. */
export interface ReconcileAction {
  readonly key: string;
  readonly action: "repair-row" | "repair-limits" | "restore-share" | "return-idle" | "expire" | "evict" | "refused";
  readonly detail: string;
  readonly applied: boolean;
}

/** One bucket as the snapshot showed it. */
export interface BucketSnapshot {
  readonly key: string;
  readonly converged: boolean;
  readonly regions: readonly { region: string; share: number; rateShare: number; tokens: number; idleMs: number; evicted: boolean }[];
}

/** The report of one run. */
export interface ReconcileReport {
  readonly region: string;
  readonly at: string;
  readonly dryRun: boolean;
  readonly buckets: readonly BucketSnapshot[];
  readonly violations: readonly (Violation & { key: string })[];
  readonly actions: readonly ReconcileAction[];
  /** Buckets visited by this run. */
  readonly visited: number;
  /** False when the run stopped for time: the next one resumes from its checkpoint. */
  readonly complete: boolean;
}

const ms = (us: bigint) => Number(us / 1000n);

/** Runs the reconciler once. */
export async function reconcile(
  deps: {
    store: BucketStore;
    clock: Clock;
    topology: Topology;
    telemetry?: Telemetry;
    /** This region's rules: a rule's bucket is held to them. @default none (rule buckets judged by their rows' limits) */
    rules?: readonly Rule[];
  },
  options: ReconcileOptions = {},
): Promise<ReconcileReport> {
  const { store, clock, topology } = deps;
  const telemetry = deps.telemetry ?? silentTelemetry;
  const self = topology.self;
  const now = clock.nowUs();
  const quietUs = BigInt(options.quietMs ?? 10_000) * 1000n;
  const dry = options.dryRun === true;
  const beats = await store.heartbeats();
  const actions: ReconcileAction[] = [];
  const violations: (Violation & { key: string })[] = [];
  const buckets: BucketSnapshot[] = [];
  const act = async (key: string, action: ReconcileAction["action"], detail: string, run: () => Promise<unknown>) => {
    if (!dry) await run();
    actions.push({ key, action, detail, applied: !dry });
  };

  // Evict: refuse while the region was heard from recently (its heartbeat, or any row it wrote), unless forced.
  const evict = options.evict;
  if (evict !== undefined) {
    const { slices } = await store.scanAll(); // an operator's one-off: the whole replica, once
    const heard = [beats.get(evict) ?? 0n, ...slices.filter((s) => s.region === evict).map((s) => s.heartbeatUs)].reduce(
      (a, b) => (a > b ? a : b),
      0n,
    );
    const ageMs = heard === 0n ? Number.POSITIVE_INFINITY : ms(now - heard);
    if (evict === self || !topology.regions.includes(evict)) {
      actions.push({ key: "*", action: "refused", detail: `cannot evict "${evict}": not a peer of ${self}`, applied: false });
    } else if (ageMs <= (options.aliveMs ?? 180_000) && !options.force) {
      actions.push({
        key: "*",
        action: "refused",
        detail: `${evict} was heard from ${Math.round(ageMs)} ms ago: it may be alive; use --force to evict it anyway`,
        applied: false,
      });
    }
  }
  const evicting = evict !== undefined && !actions.some((a) => a.action === "refused");

  // Live buckets per rule in this region, counted over the pass (the per-rule cap's true count),
  // and the claims counted when the pass began (the buckets created meanwhile are added to what it
  // finds); a pass that spans runs carries both in a second checkpoint.
  // A row counts as found only if it was claimed before the pass read the claims (its claim's
  // number is within them); a later one is counted by its claim, never twice.
  const liveBuckets = new Map<string, number>();
  let claimsAtStart = new Map<string, number>();
  if (!dry) {
    const resuming = (await store.getCheckpoint("reconcile")) !== undefined;
    const carried = resuming ? await store.getCheckpoint("reconcile-counts") : undefined;
    const state = carried ? (JSON.parse(carried) as { found?: Record<string, number>; claims?: Record<string, number> }) : undefined;
    // (A checkpoint written before the claims were kept holds the counts alone.)
    const found = state && state.found === undefined && state.claims === undefined ? (state as Record<string, number>) : state?.found;
    for (const [rule, n] of Object.entries(found ?? {})) liveBuckets.set(rule, n);
    claimsAtStart = state?.claims ? new Map(Object.entries(state.claims)) : await store.bucketClaims();
  }
  /** Counts a found row of a rule's bucket (delta 1), or takes back one this pass deleted (−1); not one counted by its claim. */
  const countFound = (row: StoredSlice, delta: 1 | -1) => {
    if (row.source.kind !== "rule") return;
    if (row.claim !== undefined && row.claim > (claimsAtStart.get(row.source.rule) ?? 0)) return;
    liveBuckets.set(row.source.rule, (liveBuckets.get(row.source.rule) ?? 0) + delta);
  };
  const rulesByName = new Map((deps.rules ?? []).map((r) => [r.name, r]));
  const visit = async (key: string, rows: StoredSlice[], config: BucketConfig | undefined): Promise<void> => {
    let own = rows.find((r) => r.region === self);
    if (own) countFound(own, 1);
    const peers = rows.filter((r) => r.region !== self);
    const evictions: Evictions = Object.assign({}, ...rows.map((r) => r.evicted ?? {}));
    const live = topology.regions.filter((r) => !evictions[r]);
    const quiet = rows.every((r) => now - r.heartbeatUs >= quietUs);

    // Evict a dead region's share into ours.
    if (evicting && evict && own && !evictions[evict]) {
      const dead = rows.find((r) => r.region === evict);
      if (dead) {
        const got = evictionShares(
          dead,
          rows.filter((r) => r !== dead),
        );
        await act(key, "evict", `absorbed ${evict}'s ${got.cap} ppm of capacity and ${got.rate} ppm of rate share`, () =>
          adjustOwnRow(
            deps,
            key,
            own as StoredSlice,
            (row) => ({
              ...row,
              capShare: row.capShare + got.cap,
              rateShare: row.rateShare + got.rate,
              evicted: { ...(row.evicted ?? {}), [evict]: { by: self, ...got } },
            }),
            "reconcile",
          ),
        );
        return;
      }
    }

    // Repair our missing row.
    if (!own) {
      const limits = config?.limits ?? peers[0]?.limits;
      if (!limits) return;
      if (peers.length > 0 && !quiet) {
        actions.push({
          key,
          action: "repair-row",
          detail: "our row is missing; waiting for a quiet snapshot to re-create it",
          applied: false,
        });
        return;
      }
      const source = config ? ({ kind: "override", version: config.version } as const) : (peers[0]?.source ?? { kind: "rule", rule: "" });
      const row = newOwnRow(key, topology, limits, source, now, [], config?.updatedAt);
      const free = peers.length > 0 ? freeShares(self, withEvictions(peers, evictions)) : undefined;
      // Re-created from a quiet snapshot: exactly the free share, empty (its tokens were lost with it).
      const repaired: StoredSlice = free
        ? { ...row, capShare: free.capShare, rateShare: free.rateShare, gives: free.gives, takes: free.takes, mark: 0n }
        : row;
      const fixed: StoredSlice = free ? { ...repaired, mark: sliceCapacity(repaired) } : repaired;
      await act(key, "repair-row", `re-created ${self}'s row with ${fixed.capShare} ppm of capacity share`, () => store.createSlice(fixed));
      if (!dry) own = fixed;
      else return;
    }
    // A rule's bucket answers to this region's rules file, not to its row's own word: a row
    // whose limits differ (a forged capacity, or a rules change no request has carried over yet)
    // is re-based onto the rule's, as the rate path would on the bucket's next request. Each
    // region does this for its own row; a peer's row is its region's to repair.
    const ownRow = own as StoredSlice;
    const rule = config === undefined && ownRow.source.kind === "rule" ? rulesByName.get(ownRow.source.rule) : undefined;
    if (rule && !sameLimits(ownRow.limits, rule.limits)) {
      await act(
        key,
        "repair-limits",
        `${self}'s row of rule "${rule.name}" claimed capacity ${ownRow.limits.capacity} and refill ${ownRow.limits.refillRate}/s; re-based onto the rule's ${rule.limits.capacity} and ${rule.limits.refillRate}/s`,
        () => applyRule(deps, key, rule.limits),
      );
      return;
    }
    const all = [ownRow, ...peers];
    const effective = withEvictions(all, evictions);
    const flight = inFlight(effective);
    const converged = live.every((r) => all.some((x) => x.region === r)) && flight.cap === 0n && flight.rate === 0n;
    if (options.snapshots !== false)
      buckets.push({
        key,
        converged,
        regions: all.map((r) => ({
          region: r.region,
          share: Number(r.capShare) / 1e6,
          rateShare: Number(r.rateShare) / 1e6,
          tokens: Number(level(r, now) / 10n ** 18n),
          idleMs: Math.max(0, ms(now - r.heartbeatUs)),
          evicted: !!evictions[r.region],
        })),
      });
    if (!converged) return;

    // Verify the invariants exactly on the converged snapshot, against the bucket's limits as the
    // config says, not a row's own word. While a config change is still reaching the rows (a row re-bases when its merge sees it),
    // the rows' own capacity is the measure, as before the change. A rule's bucket has no config
    // to trust, and each region's rules file rolls out on its own: its rows are judged by their
    // own limits (our own row was held to our rules file above).
    const settled = config !== undefined && all.every((r) => r.configAt === config.updatedAt);
    const trusted = settled ? config.limits : ownRow.limits;
    const found = checkInvariants(effective, BigInt(trusted.capacity), () => now);
    for (const v of found) {
      violations.push({ ...v, key });
      telemetry.log("error", "invariant violated", { key, ...v });
    }
    if (found.length > 0) telemetry.metric("InvariantViolations", found.length);
    if (found.some((v) => v.invariant === "I2")) {
      // Attributable to our row: it claims a larger capacity than the bucket has. Re-base it onto
      // the bucket's limits (its tokens capped at the slice's capacity there); a peer's row is
      // its region's to repair, so anything else raises the alarm.
      if (settled && config && ownRow.limits.capacity > config.limits.capacity) {
        await act(
          key,
          "repair-limits",
          `${self}'s row claimed capacity ${ownRow.limits.capacity}; re-based onto the bucket's ${config.limits.capacity}`,
          () => applyConfig(deps, { ...config, inherit: "as-is" }), // the config's own re-base, tokens kept up to the capacity
        );
      } else {
        telemetry.metric("UnrepairedViolations", 1);
        telemetry.log("error", "invariant violation this region cannot repair (not in its own row)", { key });
      }
      return;
    }

    // Restore share lost with deleted rows (home region, quiet snapshots only).
    const capTotal = effective.reduce((a, r) => a + r.capShare, 0n);
    const rateTotal = effective.reduce((a, r) => a + r.rateShare, 0n);
    if (self === live[0] && quiet && (capTotal < WHOLE_SHARE || rateTotal < WHOLE_SHARE) && found.length === 0) {
      const dCap = WHOLE_SHARE - capTotal;
      const dRate = WHOLE_SHARE - rateTotal;
      await act(key, "restore-share", `restored ${dCap} ppm of capacity and ${dRate} ppm of rate share stranded by lost rows`, () =>
        adjustOwnRow(
          deps,
          key,
          ownRow,
          (row) => ({
            ...row,
            capShare: row.capShare + (dCap > 0n ? dCap : 0n),
            rateShare: row.rateShare + (dRate > 0n ? dRate : 0n),
          }),
          "reconcile",
        ),
      );
      return;
    }
    const limits = ownRow.limits;

    // Expire an idle bucket: every row idle for ttl after it could have refilled, and full.
    if (limits.ttl !== undefined && topology.regions.length > 1) {
      const fillMs = limits.refillRate > 0 ? (limits.capacity / limits.refillRate) * 1000 : 0;
      const ttlMs = limits.ttl * 1000;
      const idle = all.every((r) => ms(now - r.heartbeatUs) >= ttlMs + fillMs);
      if (idle && all.every((r) => level(r, now) === sliceCapacity(r))) {
        await act(key, "expire", `idle for more than ttl ${limits.ttl} s: ${self}'s row deleted (peers delete theirs on their run)`, () =>
          store.deleteSlice(key),
        );
        if (!dry) countFound(own, -1);
        return;
      }
    }

    // Return share above the baseline when this region has been idle.
    const idleUs = BigInt(options.returnIdleAfterMs ?? 60_000) * 1000n;
    const base = initialShare(topology);
    if (now - ownRow.heartbeatUs >= idleUs && ownRow.capShare > base) {
      const deficits = peers
        .filter((p) => !evictions[p.region])
        .map((p) => ({ region: p.region, d: initialShare({ ...topology, self: p.region }) - p.capShare }))
        .filter((x) => x.d > 0n);
      const total = deficits.reduce((a, x) => a + x.d, 0n);
      if (total > 0n) {
        const excess = ownRow.capShare - base;
        const budget = excess < total ? excess : total;
        await act(key, "return-idle", `idle: returning ${budget} ppm of share toward the baseline`, () =>
          adjustOwnRow(
            deps,
            key,
            ownRow,
            (row, at) => {
              let next = row;
              for (const x of deficits) {
                const amount = (budget * x.d) / total;
                const rateAmount = next.rateShare > base ? ((next.rateShare - base) * x.d) / total : 0n;
                next = give(next, x.region, amount, rateAmount, at);
              }
              return next;
            },
            "reconcile",
          ),
        );
      }
    }
  };

  const progress = await forEachBucket(
    deps,
    "reconcile",
    { budgetMs: options.budgetMs ?? Number.POSITIVE_INFINITY, pageSize: options.pageSize ?? 1000, concurrency: options.concurrency ?? 8 },
    (g) =>
      visit(
        g.key,
        g.slices.filter((r) => topology.regions.includes(r.region)),
        g.config,
      ),
  );
  // A whole pass counted every bucket: reset the per-rule counters to the truth, plus the claims
  // made while it ran. They only ever over-count between passes (a claimed slot whose create lost
  // a race, a row TTL deleted, or a bucket a resumed pass visited twice).
  if (!dry && progress.done) {
    await store.setBucketCounts(liveBuckets, claimsAtStart);
    await store.putCheckpoint("reconcile-counts", undefined);
  } else if (!dry) {
    await store.putCheckpoint(
      "reconcile-counts",
      JSON.stringify({ found: Object.fromEntries(liveBuckets), claims: Object.fromEntries(claimsAtStart) }),
    );
  }
  return {
    region: self,
    at: new Date(Number(now / 1000n)).toISOString(),
    dryRun: dry,
    buckets,
    violations,
    actions,
    visited: progress.visited,
    complete: progress.done,
  };
}

/** The report as a readable table. */
export function formatReport(r: ReconcileReport): string {
  const lines: string[] = [];
  lines.push(`reconcile ${r.region} at ${r.at}${r.dryRun ? " (dry run: nothing written)" : ""}`);
  lines.push("");
  lines.push(
    `${"bucket".padEnd(24)} ${"region".padEnd(16)} ${"share".padStart(8)} ${"rate".padStart(8)} ${"tokens".padStart(8)} ${"idle s".padStart(8)}  converged`,
  );
  for (const b of r.buckets) {
    for (const [i, x] of b.regions.entries()) {
      lines.push(
        `${(i === 0 ? b.key : "").padEnd(24)} ${(x.region + (x.evicted ? " (evicted)" : "")).padEnd(16)} ${x.share.toFixed(4).padStart(8)} ${x.rateShare.toFixed(4).padStart(8)} ${String(x.tokens).padStart(8)} ${(x.idleMs / 1000).toFixed(0).padStart(8)}  ${i === 0 ? (b.converged ? "yes" : "no (in flight)") : ""}`,
      );
    }
  }
  lines.push("");
  lines.push(r.violations.length === 0 ? "violations: none" : `VIOLATIONS: ${r.violations.length}`);
  for (const v of r.violations) lines.push(`  ${v.key}: ${v.invariant}: ${v.message}`);
  lines.push(r.actions.length === 0 ? "actions: none" : "actions:");
  for (const a of r.actions) lines.push(`  ${a.applied ? "done" : "would"}: ${a.action} ${a.key}: ${a.detail}`);
  return lines.join("\n");
}
