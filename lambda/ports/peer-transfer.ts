/**
 * The borrow port: a direct, short cross-region call asking a peer to give share now
 * (ARCHITECTURE.md §3 "borrow"), and the offer a donor sends a region it gave share to. In AWS:
 * invoking the peer region's transfer function; locally: an internal route cut by partitions;
 * in the simulator: a virtual-time call.
 */
import type { Transfer } from "../core/escrow.js";
import type { BucketLimits } from "../core/limits.js";
import type { LimitSource } from "./bucket-store.js";

/** What the borrower tells the lender. */
export interface BorrowRequest {
  readonly key: string;
  readonly borrower: string;
  /** The borrower's fresh demand, tokens/s. */
  readonly demand: number;
  /**
   * What the borrower is short of, whole tokens (may be fractional): the request that found it
   * dry plus its demand over the next second. The lender hands over the capacity share that
   * carries this many of its tokens, if it can spare it (bounded by the bucket's capacity).
   */
  readonly needTokens?: number | undefined;
  /** Capacity share the borrower lacks to hold the request at all, ppm (a request above its slice). */
  readonly needShare?: number | undefined;
  /**
   * Lend nothing: the lender writes the give it invited the borrower to collect, if its own
   * stored invite still holds (nothing in the request sizes it), and answers what it has given
   * the borrower so far (its cumulative `gives[borrower]`). A region that received an
   * {@link Offer} collects with it. @default false
   */
  readonly collect?: boolean | undefined;
  /**
   * The bucket as the borrower's row has it, so that a lender that has never served the key (and
   * has not yet seen it replicated) can create its own row, with its initial share, and lend from it.
   */
  readonly bucket?: { readonly limits: BucketLimits; readonly source: LimitSource; readonly configAt?: number | undefined } | undefined;
}

/** The lender's answer: its cumulative `gives[borrower]` (merge it like a replicated row), or a refusal. */
export type BorrowAnswer =
  | {
      readonly ok: true;
      readonly given: Transfer;
      /**
       * Whether this call gave anything new. `given` is cumulative and may hold earlier gives
       * still in flight; a borrow whose new share replication merged first has landed all the same.
       */
      readonly lent?: boolean | undefined;
    }
  | { readonly ok: false; readonly reason: string };

/**
 * A donor's note to a region it plans to give share to (an invite it stored), or has just given
 * share to: "collect it now" (ARCHITECTURE.md §3, "direct delivery"). It carries no amounts: the
 * receiver asks the giver itself (a {@link BorrowRequest} with `collect`), which writes what its
 * own invite says, so a forged offer costs one call and moves nothing the giver had not planned.
 */
export interface Offer {
  readonly key: string;
  /** The region that gives (the one the receiver asks). */
  readonly giver: string;
}

/** Calls a peer region. Rejects (or answers `ok: false`) when the peer is unreachable or slow. */
export interface PeerTransfer {
  borrow(peer: string, request: BorrowRequest): Promise<BorrowAnswer>;
  /**
   * Sends `peer` an offer without waiting for it to collect (in AWS an asynchronous invocation).
   * Rejects when it could not be sent; a lost offer only leaves the give to the giver's next
   * merge pass and replication.
   */
  offer(peer: string, offer: Offer): Promise<void>;
}
