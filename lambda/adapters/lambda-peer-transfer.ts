/**
 * Borrow calls in AWS: invoke the peer region's transfer function directly (the Lambda Invoke
 * API, SigV4-signed with the function's own credentials). A short timeout and no retries: a slow
 * or failed call means "denied for now". (A signed `fetch` rather than the Lambda SDK client keeps
 * the rate function's bundle under 1 MB; the signer and credentials come with the DynamoDB client.)
 */
import { Sha256 } from "@aws-crypto/sha256-js";
import { defaultProvider } from "@aws-sdk/credential-provider-node";
import { SignatureV4 } from "@smithy/signature-v4";
import { fromWire } from "../handlers/transfer.js";
import { transferFunctionName } from "../names.js";
import type { BorrowAnswer, BorrowRequest, Offer, PeerTransfer } from "../ports/peer-transfer.js";

/** Where and as whom {@link LambdaPeerTransfer} calls (tests point it at a local endpoint). */
export interface LambdaPeerTransferOptions {
  /** The Lambda endpoint of a region. @default `https://lambda.<region>.amazonaws.com` */
  readonly endpointOf?: (region: string) => string;
  /** Signing credentials. @default the default provider chain (the function's role) */
  readonly credentials?: ConstructorParameters<typeof SignatureV4>[0]["credentials"];
}

/**
 * The functions' peer calls (borrow, offer, collect), or none when `TOKENBANK_BORROW=off` turns
 * direct calls off (replication-driven rebalancing remains).
 */
export function peerTransferFromEnv(env: NodeJS.ProcessEnv = process.env): LambdaPeerTransfer | undefined {
  return env.TOKENBANK_BORROW === "off" ? undefined : new LambdaPeerTransfer();
}

/** PeerTransfer over Lambda invocations: borrows wait for the answer, offers are queued (asynchronous invocation). */
export class LambdaPeerTransfer implements PeerTransfer {
  private readonly signers = new Map<string, SignatureV4>();
  private readonly credentials: NonNullable<LambdaPeerTransferOptions["credentials"]>;
  private readonly endpointOf: (region: string) => string;

  /** @param timeoutMs the whole call's budget (signing, connection, answer and body), ms */
  constructor(
    private readonly timeoutMs = 300,
    options: LambdaPeerTransferOptions = {},
  ) {
    this.credentials = options.credentials ?? defaultProvider();
    this.endpointOf = options.endpointOf ?? ((region) => `https://lambda.${region}.amazonaws.com`);
  }

  async borrow(peer: string, request: BorrowRequest): Promise<BorrowAnswer> {
    const res = await this.invoke(peer, JSON.stringify(request), "RequestResponse");
    const text = await res.text();
    if (!res.ok || res.headers.get("x-amz-function-error"))
      return { ok: false, reason: `transfer function error: ${res.status} ${res.headers.get("x-amz-function-error") ?? ""}`.trim() };
    return fromWire(JSON.parse(text));
  }

  /** An asynchronous invocation (`Event`): Lambda queues it and answers 202 at once. */
  async offer(peer: string, offer: Offer): Promise<void> {
    const res = await this.invoke(peer, JSON.stringify({ kind: "offer", ...offer }), "Event");
    await res.text();
    if (res.status !== 202) throw new Error(`offer to ${peer} not queued: ${res.status}`);
  }

  private async invoke(peer: string, body: string, type: "RequestResponse" | "Event"): Promise<Response> {
    let signer = this.signers.get(peer);
    if (!signer) {
      signer = new SignatureV4({ service: "lambda", region: peer, credentials: this.credentials, sha256: Sha256 });
      this.signers.set(peer, signer);
    }
    const signal = AbortSignal.timeout(this.timeoutMs);
    const endpoint = new URL(this.endpointOf(peer));
    const path = `/2015-03-31/functions/${transferFunctionName(peer)}/invocations`;
    const signed = await signer.sign({
      method: "POST",
      protocol: endpoint.protocol,
      hostname: endpoint.hostname,
      ...(endpoint.port ? { port: Number(endpoint.port) } : {}),
      path,
      headers: { host: endpoint.host, "content-type": "application/json", "x-amz-invocation-type": type },
      body,
    });
    signal.throwIfAborted();
    return fetch(`${endpoint.origin}${path}`, { method: "POST", headers: signed.headers as Record<string, string>, body, signal });
  }
}
