/**
 * Borrow calls and offers between local regions: HTTP to the peer's internal route, cut by the
 * control API's partitions, with a timeout (a slow peer means "denied for now").
 */
import { fromWire } from "../lambda/handlers/transfer.js";
import type { BorrowAnswer, BorrowRequest, Offer, PeerTransfer } from "../lambda/ports/peer-transfer.js";

/** A PeerTransfer over the local system's region ports. */
export class LocalPeerTransfer implements PeerTransfer {
  constructor(
    private readonly self: string,
    private readonly urlOf: (region: string) => string | undefined,
    private readonly isCut: (region: string) => boolean,
    private readonly timeoutMs = 500,
  ) {}

  async borrow(peer: string, request: BorrowRequest): Promise<BorrowAnswer> {
    if (this.isCut(this.self) || this.isCut(peer)) return { ok: false, reason: "partitioned" };
    const url = this.urlOf(peer);
    if (!url) return { ok: false, reason: `unknown region "${peer}"` };
    const res = await fetch(`${url}/internal/borrow`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(request),
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    return fromWire(await res.json());
  }

  /** Posts the offer to the peer's internal route (which collects before it answers: locally that is a few ms). */
  async offer(peer: string, offer: Offer): Promise<void> {
    if (this.isCut(this.self) || this.isCut(peer)) throw new Error("partitioned");
    const url = this.urlOf(peer);
    if (!url) throw new Error(`unknown region "${peer}"`);
    const res = await fetch(`${url}/internal/borrow`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ kind: "offer", ...offer }),
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    await res.text();
    if (!res.ok) throw new Error(`offer to ${peer}: ${res.status}`);
  }
}
