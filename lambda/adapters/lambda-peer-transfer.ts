/**
 * Borrow calls in AWS: invoke the peer region's transfer function directly (IAM-authorized,
 * cross-region). A short timeout and no retries: a slow or failed call means "denied for now".
 */
import { InvokeCommand, LambdaClient } from "@aws-sdk/client-lambda";
import { fromWire } from "../handlers/transfer.js";
import type { BorrowAnswer, BorrowRequest, PeerTransfer } from "../ports/peer-transfer.js";

/** The transfer function's name in a region (the CDK app names it so). */
export const transferFunctionName = (region: string): string => `tokenbank-transfer-${region}`;

/** PeerTransfer over Lambda invocations. */
export class LambdaPeerTransfer implements PeerTransfer {
  private readonly clients = new Map<string, LambdaClient>();

  constructor(private readonly timeoutMs = 300) {}

  private client(region: string): LambdaClient {
    let c = this.clients.get(region);
    if (!c) {
      c = new LambdaClient({
        region,
        maxAttempts: 1,
        requestHandler: { requestTimeout: this.timeoutMs, connectionTimeout: this.timeoutMs },
      });
      this.clients.set(region, c);
    }
    return c;
  }

  async borrow(peer: string, request: BorrowRequest): Promise<BorrowAnswer> {
    const out = await this.client(peer).send(
      new InvokeCommand({ FunctionName: transferFunctionName(peer), Payload: new TextEncoder().encode(JSON.stringify(request)) }),
    );
    if (out.FunctionError || !out.Payload) return { ok: false, reason: `transfer function error: ${out.FunctionError ?? "no payload"}` };
    return fromWire(JSON.parse(new TextDecoder().decode(out.Payload)));
  }
}
