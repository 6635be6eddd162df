/**
 * Budgeted, resumable passes over every bucket of a region's replica, for the scheduled jobs:
 * page by page, a few buckets at a time, stopping before the time budget runs out and saving
 * where the next run resumes (a checkpoint in the table), so a job finishes within its function
 * timeout however many buckets there are.
 */
import type { Forecast } from "../core/forecast.js";
import type { BucketConfig, BucketStore, StoredSlice } from "../ports/bucket-store.js";
import type { Clock } from "../ports/clock.js";

/** One bucket's items as a scan returns them. */
export interface BucketGroup {
  readonly key: string;
  readonly slices: StoredSlice[];
  config?: BucketConfig | undefined;
  readonly forecasts: Forecast[];
}

/** Options of one pass. */
export interface PassOptions {
  /** Stop fetching pages after this long, ms (the page in hand is finished). */
  readonly budgetMs: number;
  /** Buckets visited at once. @default 8 */
  readonly concurrency?: number;
  /** Items a page reads. @default 1000 */
  readonly pageSize?: number;
}

/** What one pass did. */
export interface PassProgress {
  /** Buckets visited in this run. */
  readonly visited: number;
  readonly pages: number;
  /** True when the pass reached the end of the table (the checkpoint is cleared); false when it stopped for time. */
  readonly done: boolean;
  /** Whether this run resumed from a checkpoint. */
  readonly resumed: boolean;
}

/** Groups a page's items by bucket, in scan order. */
function groups(page: { slices: StoredSlice[]; configs: BucketConfig[]; forecasts: Forecast[] }): BucketGroup[] {
  const out = new Map<string, BucketGroup>();
  const of = (key: string) => {
    let g = out.get(key);
    if (!g) {
      g = { key, slices: [], forecasts: [] };
      out.set(key, g);
    }
    return g;
  };
  for (const s of page.slices) of(s.key).slices.push(s);
  for (const c of page.configs) of(c.key).config = c;
  for (const f of page.forecasts) of(f.key).forecasts.push(f);
  return [...out.values()];
}

/** Runs `visit` over `items`, at most `limit` at once. */
async function pool<T>(items: readonly T[], limit: number, visit: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await visit(items[next++] as T);
    }),
  );
}

/**
 * Visits every bucket of the replica once per pass, resuming from job `job`'s checkpoint. A
 * bucket whose items straddle two pages is visited once, whole. A run that stops for time
 * resumes at the start of the page holding the bucket it had not finished, so a few buckets may
 * be visited twice across runs: `visit` must be idempotent (every job's is: it writes the
 * difference between what it finds and what it wants).
 */
export async function forEachBucket(
  deps: { store: BucketStore; clock: Clock },
  job: string,
  options: PassOptions,
  visit: (group: BucketGroup) => Promise<void>,
): Promise<PassProgress> {
  const { store, clock } = deps;
  const startedMs = Number(clock.nowUs() / 1000n);
  const elapsed = () => Number(clock.nowUs() / 1000n) - startedMs;
  let cursor = await store.getCheckpoint(job);
  const resumed = cursor !== undefined;
  let held: BucketGroup | undefined; // the last bucket of the previous page: it may continue on this one
  let heldFrom: string | undefined; // where the page that holds its first item starts
  let visited = 0;
  let pages = 0;
  for (;;) {
    if (pages > 0 && elapsed() >= options.budgetMs) {
      await store.putCheckpoint(job, held ? heldFrom : cursor);
      return { visited, pages, done: false, resumed };
    }
    const page = await store.scanPage(cursor, options.pageSize ?? 1000);
    pages++;
    const found = groups(page);
    const first = found[0];
    // The held bucket as this page continues it (merged into its first group, or on its own).
    let continuing: BucketGroup | undefined;
    if (held && first?.key === held.key) {
      first.slices.unshift(...held.slices);
      first.forecasts.unshift(...held.forecasts);
      first.config ??= held.config;
      continuing = first;
    } else if (held) {
      found.unshift(held);
      continuing = held;
    }
    // The page's last bucket may go on in the next page: keep it for then.
    const next = page.cursor ? found.pop() : undefined;
    const nextFrom = next !== undefined && next === continuing ? heldFrom : cursor;
    await pool(found, options.concurrency ?? 8, visit);
    visited += found.length;
    if (!page.cursor) {
      await store.putCheckpoint(job, undefined);
      return { visited, pages, done: true, resumed };
    }
    held = next;
    heldFrom = nextFrom;
    cursor = page.cursor;
  }
}
