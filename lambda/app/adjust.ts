/**
 * Applies an escrow change (merges, gives) to a region's own row as one commuting conditional
 * write (see `planAdjust`): never freezes the row, so it cannot starve under a hot key; a
 * failed condition returns the real row and the change is replanned on it.
 */
import { escrowAdjust } from "../core/escrow.js";
import type { BucketStore, GeometryWriter, StoredSlice } from "../ports/bucket-store.js";
import type { Clock } from "../ports/clock.js";

/**
 * Applies `change` starting from `start` (a possibly stale copy). Returns the row written,
 * `undefined` when the change is a no-op or the row is gone.
 * @throws {Error} after 12 failed attempts (contention)
 */
export async function adjustOwnRow(
  deps: { store: BucketStore; clock: Clock },
  key: string,
  start: StoredSlice,
  change: (row: StoredSlice, nowUs: bigint) => StoredSlice,
  writer: GeometryWriter,
): Promise<{ before: StoredSlice; after: StoredSlice } | undefined> {
  const { store, clock } = deps;
  let row = start;
  for (let attempt = 0; attempt < 12; attempt++) {
    const now = clock.nowUs();
    if (row.frozenUntilUs !== undefined) {
      await clock.sleep(5); // an admin rewrite holds it for one round trip
      row = (await store.getSlice(key)) ?? row;
      continue;
    }
    const next = change(row, now);
    if (next === row) return undefined;
    const plan = escrowAdjust(row, next, now);
    if (!plan) {
      row = (await store.getSlice(key)) ?? row; // the copy cannot be right: read the truth
      continue;
    }
    const out = await store.adjustSlice(key, plan, next, writer);
    if (out.ok && out.row) return { before: row, after: out.row };
    if (!out.row) return undefined; // the bucket was deleted meanwhile
    row = out.row;
  }
  throw new Error(`could not update bucket "${key}": too much contention`);
}
