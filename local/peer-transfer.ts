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
    const to = this.routeTo(peer);
    if ("reason" in to) return { ok: false, reason: to.reason };
    return fromWire(await (await this.post(to.url, request)).json());
  }

  /** Posts the offer to the peer's internal route (which collects before it answers: locally that is a few ms). */
  async offer(peer: string, offer: Offer): Promise<void> {
    const to = this.routeTo(peer);
    if ("reason" in to) throw new Error(to.reason);
    const res = await this.post(to.url, { kind: "offer", ...offer });
    await res.text();
    if (!res.ok) throw new Error(`offer to ${peer}: ${res.status}`);
  }

  /** The peer's internal route, or why it cannot be reached now. */
  private routeTo(peer: string): { url: string } | { reason: string } {
    if (this.isCut(this.self) || this.isCut(peer)) return { reason: "partitioned" };
    const url = this.urlOf(peer);
    return url ? { url: `${url}/internal/borrow` } : { reason: `unknown region "${peer}"` };
  }

  private post(url: string, body: unknown): Promise<Response> {
    return fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(this.timeoutMs),
    });
  }
}
