/**
 * The lender side of a borrow: a peer region asks this region to give share now (or, collecting
 * an offer, to write the give it invited the peer to collect, if it still holds, and answer what
 * it has given so far); and the receiver side of an offer. In AWS the
 * transfer function is invoked directly (cross-region, IAM-authorized); locally it is the
 * internal route `POST /internal/borrow` of each region's port.
 */
import middy from "@middy/core";
import * as z from "zod/mini";
import type { Merger } from "../app/merger.js";
import type { Transfer } from "../core/escrow.js";
import { limitFields } from "../core/limits.js";
import type { BorrowAnswer } from "../ports/peer-transfer.js";

/** A borrow request on the wire. */
export const borrowRequest = z.strictObject({
  key: z.string().check(z.minLength(1), z.maxLength(512)),
  borrower: z.string().check(z.minLength(1)),
  demand: z.number().check(z.minimum(0), z.maximum(1e12)),
  needTokens: z.optional(z.number().check(z.minimum(0), z.maximum(1e12))),
  needShare: z.optional(z.number().check(z.minimum(0), z.maximum(1_000_000))),
  collect: z.optional(z.boolean()),
  bucket: z.optional(
    z.strictObject({
      limits: z.strictObject(limitFields),
      source: z.union([
        z.strictObject({ kind: z.literal("rule"), rule: z.string() }),
        z.strictObject({ kind: z.literal("override"), version: z.number() }),
      ]),
      configAt: z.optional(z.number()),
    }),
  ),
});

/** An offer on the wire: a donor tells this region to collect what it has for it (nothing in it is trusted but the names). */
export const offerRequest = z.strictObject({
  kind: z.literal("offer"),
  key: z.string().check(z.minLength(1), z.maxLength(512)),
  giver: z.string().check(z.minLength(1), z.maxLength(64)),
});

/** What the transfer function answers an offer (the offerer does not wait for it in AWS). */
export type WireOfferAnswer = { ok: true; collected: boolean } | { ok: false; reason: string };

/** A borrow answer on the wire (bigints as decimal strings). */
export type WireAnswer = { ok: true; given: { cap: string; rate: string; tokens: string }; lent?: boolean } | { ok: false; reason: string };

/** Encodes an answer for the wire. */
export function toWire(answer: BorrowAnswer): WireAnswer {
  if (!answer.ok) return answer;
  const g = answer.given;
  return { ok: true, given: { cap: g.cap.toString(), rate: g.rate.toString(), tokens: g.tokens.toString() }, lent: answer.lent === true };
}

/** Decodes a wire answer. @throws {Error} when it is malformed */
export function fromWire(value: unknown): BorrowAnswer {
  const v = value as WireAnswer;
  if (v && v.ok === false && typeof v.reason === "string") return { ok: false, reason: v.reason };
  if (v && v.ok === true && v.given) {
    const given: Transfer = { cap: BigInt(v.given.cap), rate: BigInt(v.given.rate), tokens: BigInt(v.given.tokens) };
    return { ok: true, given, lent: v.lent === true };
  }
  throw new Error("malformed borrow answer");
}

/**
 * Builds the transfer handler (direct invocation: the event is the request): a borrow, answered
 * with what this region gives, or an offer, which this region collects from the giver.
 */
export function makeTransferHandler(deps: { merger: Merger }) {
  return middy(async (event: unknown): Promise<WireAnswer | WireOfferAnswer> => {
    if ((event as { kind?: unknown } | null)?.kind === "offer") {
      const offer = offerRequest.safeParse(event);
      if (!offer.success) return { ok: false, reason: "malformed offer" };
      return { ok: true, collected: await deps.merger.collect(offer.data) };
    }
    const request = borrowRequest.safeParse(event);
    if (!request.success) return { ok: false, reason: "malformed borrow request" };
    try {
      return toWire(await deps.merger.lend(request.data));
    } catch (error) {
      return { ok: false, reason: `lender failed: ${(error as Error).message}` };
    }
  });
}
