/**
 * Idempotent `POST /rate`: a retry that carries the same idempotency key (`Idempotency-Key`
 * header or body `requestId`) within the window gets the first decision back and is not
 * charged again. The record of an allowed decision is written in the same transaction as its
 * take, so a retry can never be charged twice; a denial is recorded after it.
 */
import { decodeDecision, encodeDecision, type RateDecision } from "../core/decision.js";
import { ConflictError, ValidationError } from "../core/errors.js";
import { sha256Hex } from "../core/sha256.js";
import type { BucketStore, IdempotencyRecord } from "../ports/bucket-store.js";

/** How long an idempotency key is remembered. */
export const IDEMPOTENCY_WINDOW_MS = 10 * 60 * 1000;

/** A validated idempotency key and the request it stands for. */
export interface IdempotencyClaim {
  readonly id: string;
  /** What the request asked (tokens and buckets): a reused key with other parameters is refused. */
  readonly fingerprint: string;
}

/** A decision, possibly replayed from an earlier request with the same key. */
export type MaybeReplayed = RateDecision & { readonly replayed?: boolean };

/**
 * Validates a key and fingerprints the request. The record is scoped to the caller (the IAM
 * principal or JWT subject, when the API has one) and to the buckets the request targets: the
 * same key from another caller, or for other buckets, is another record, so a key guessed or
 * reused elsewhere replays nothing. The stored id is a SHA-256 of the scope (bounded, and no
 * principal or bucket key in the clear).
 * @throws {ValidationError} `request.invalid_idempotency_key`
 */
export function claim(id: string, tokens: number, keys: readonly string[], caller = ""): IdempotencyClaim {
  if (!/^[\x21-\x7e]{1,255}$/.test(id)) {
    throw new ValidationError(
      "request.invalid_idempotency_key",
      "the idempotency key must be 1–255 printable ASCII characters without spaces",
    );
  }
  const targets = [...keys].sort();
  return { id: sha256Hex(JSON.stringify([caller, targets, id])), fingerprint: `${tokens}|${targets.join("|")}` };
}

/**
 * The earlier decision for this key, if one is still remembered.
 * @throws {ConflictError} `request.idempotency_mismatch` when the key was used for another request
 */
export async function replay(store: BucketStore, c: IdempotencyClaim, nowMs: number): Promise<MaybeReplayed | undefined> {
  const prior = await store.getIdempotency(c.id);
  if (!prior || prior.expiresAtMs <= nowMs) return undefined;
  if (prior.fingerprint !== c.fingerprint) {
    throw new ConflictError(
      "request.idempotency_mismatch",
      "this idempotency key was used for a different request (other tokens or buckets)",
    );
  }
  return { ...decodeDecision(prior.decision), replayed: true };
}

/** The record that remembers `decision` for this key from `nowMs`. */
export function recordOf(c: IdempotencyClaim, decision: RateDecision, nowMs: number): IdempotencyRecord {
  return { id: c.id, fingerprint: c.fingerprint, decision: encodeDecision(decision), expiresAtMs: nowMs + IDEMPOTENCY_WINDOW_MS };
}

/** The decision a concurrent request with the same key recorded first (it won the race). */
export async function recorded(store: BucketStore, c: IdempotencyClaim): Promise<MaybeReplayed | undefined> {
  const prior = await store.getIdempotency(c.id);
  return prior ? { ...decodeDecision(prior.decision), replayed: true } : undefined;
}
