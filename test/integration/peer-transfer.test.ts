/**
 * The AWS borrow call (`LambdaPeerTransfer`: a SigV4-signed Lambda Invoke) against local HTTP
 * endpoints: its timeout fires whether the peer never answers, or answers its headers and
 * never its body; a real answer is signed for the peer's transfer function and read back; an
 * offer is queued as an asynchronous invocation.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { LambdaPeerTransfer, peerTransferFromEnv } from "../../lambda/adapters/lambda-peer-transfer.js";
import { transferFunctionName } from "../../lambda/names.js";
import type { BorrowRequest } from "../../lambda/ports/peer-transfer.js";

const credentials = { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" };
const request: BorrowRequest = { key: "k", borrower: "us-east-1", demand: 1, needTokens: 1 };

let server: Server | undefined;
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
});

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  server = createServer(handler);
  server.on("connection", (s) => sockets.push(s));
  await new Promise<void>((r) => server?.listen(0, "127.0.0.1", () => r()));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function timed<T>(run: () => Promise<T>): Promise<{ ms: number; error: unknown; value: T | undefined }> {
  const started = performance.now();
  try {
    const value = await run();
    return { ms: performance.now() - started, error: undefined, value };
  } catch (error) {
    return { ms: performance.now() - started, error, value: undefined };
  }
}

describe("LambdaPeerTransfer", () => {
  it("is what the functions call peers with, unless TOKENBANK_BORROW=off turns direct calls off", () => {
    expect(peerTransferFromEnv({ TOKENBANK_BORROW: "off" })).toBeUndefined();
    expect(peerTransferFromEnv({ TOKENBANK_BORROW: "on" })).toBeInstanceOf(LambdaPeerTransfer);
    expect(peerTransferFromEnv({})).toBeInstanceOf(LambdaPeerTransfer);
  });

  it("gives up at its timeout when the peer never answers", async () => {
    const url = await serve(() => undefined); // reads the request, never answers
    const transfer = new LambdaPeerTransfer(200, { endpointOf: () => url, credentials });
    const out = await timed(() => transfer.borrow("eu-central-1", request));
    expect(out.error).toBeDefined();
    expect(out.ms).toBeLessThan(600);
  });

  it("gives up at its timeout when the peer sends its headers and never its body", async () => {
    const url = await serve((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.write('{"ok":');
    });
    const transfer = new LambdaPeerTransfer(200, { endpointOf: () => url, credentials });
    const out = await timed(() => transfer.borrow("eu-central-1", request));
    expect(out.error).toBeDefined();
    expect(out.ms).toBeLessThan(600);
  });

  it("signs the call for the peer's transfer function and reads its answer", async () => {
    let seen: { path?: string | undefined; authorization?: string | undefined; invocationType?: string | undefined; body: string } = {
      body: "",
    };
    const url = await serve((req, res) => {
      let body = "";
      req.on("data", (d: Buffer) => {
        body += d.toString();
      });
      req.on("end", () => {
        seen = {
          path: req.url,
          authorization: req.headers.authorization,
          invocationType: req.headers["x-amz-invocation-type"] as string | undefined,
          body,
        };
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ ok: true, given: { cap: "10", rate: "20", tokens: "30" }, lent: true }));
      });
    });
    const transfer = new LambdaPeerTransfer(1000, { endpointOf: () => url, credentials });
    const answer = await transfer.borrow("eu-central-1", request);
    expect(answer).toEqual({ ok: true, given: { cap: 10n, rate: 20n, tokens: 30n }, lent: true });
    expect(seen.path).toBe(`/2015-03-31/functions/${transferFunctionName("eu-central-1")}/invocations`);
    expect(seen.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-central-1\/lambda\/aws4_request/);
    expect(JSON.parse(seen.body)).toEqual(request);
    // A borrow waits for the answer: a synchronous invocation, signed with its type.
    expect(seen.invocationType).toBe("RequestResponse");
    expect(seen.authorization).toMatch(/SignedHeaders=[^,]*x-amz-invocation-type/);
  });

  it("queues an offer as an asynchronous invocation (202), and rejects when Lambda does not queue it", async () => {
    const seen: { type?: string | undefined; body: string }[] = [];
    let status = 202;
    const url = await serve((req, res) => {
      let body = "";
      req.on("data", (d: Buffer) => {
        body += d.toString();
      });
      req.on("end", () => {
        seen.push({ type: req.headers["x-amz-invocation-type"] as string | undefined, body });
        res.writeHead(status);
        res.end();
      });
    });
    const transfer = new LambdaPeerTransfer(1000, { endpointOf: () => url, credentials });
    await transfer.offer("eu-central-1", { key: "k", giver: "us-east-1" });
    expect(seen).toEqual([{ type: "Event", body: JSON.stringify({ kind: "offer", key: "k", giver: "us-east-1" }) }]);
    status = 429;
    await expect(transfer.offer("eu-central-1", { key: "k", giver: "us-east-1" })).rejects.toThrow(/not queued: 429/);
  });
});
