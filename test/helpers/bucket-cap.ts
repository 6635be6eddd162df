/** The per-rule cap's recount, against any store: claims made while a pass runs are kept. */
import { expect } from "vitest";
import type { BucketStore } from "../../lambda/ports/bucket-store.js";

/** Runs the recount scenario on `store` (fresh: no claims of rule "r" yet). */
export async function recountKeepsClaims(store: BucketStore): Promise<void> {
  for (let i = 1; i <= 3; i++) expect(await store.claimBucket("r", 5)).toBe(i); // each claim is numbered
  const atStart = await store.bucketClaims();
  // Two buckets created while the pass runs, after it scanned past where they land.
  expect(await store.claimBucket("r", 5)).not.toBe(false);
  expect(await store.claimBucket("r", 5)).not.toBe(false);
  await store.setBucketCounts(new Map([["r", 3]]), atStart);
  // 5 live: the cap holds (an overwrite with the pass's 3 let two more in).
  expect(await store.claimBucket("r", 5)).toBe(false);
  // A later pass that finds fewer (two rows expired) frees their slots, and no more.
  await store.setBucketCounts(new Map([["r", 3]]), await store.bucketClaims());
  expect(await store.claimBucket("r", 5)).not.toBe(false);
  expect(await store.claimBucket("r", 5)).not.toBe(false);
  expect(await store.claimBucket("r", 5)).toBe(false);
  // A rule no pass found any more goes back to the claims made since its start.
  await store.setBucketCounts(new Map(), await store.bucketClaims());
  for (let i = 0; i < 5; i++) expect(await store.claimBucket("r", 5)).not.toBe(false);
  expect(await store.claimBucket("r", 5)).toBe(false);
}
