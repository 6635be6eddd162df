/**
 * Serves Lambda HTTP handlers locally: turns each Node request into an API Gateway HTTP API
 * (v2) event, routes it as API Gateway would, and writes the handler's result back.
 * Binds to 127.0.0.1 only.
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { APIGatewayProxyEventV2, Context } from "aws-lambda";
import { NotFoundError, PayloadTooLargeError, ValidationError } from "../lambda/core/errors.js";
import type { HttpHandler } from "../lambda/handlers/http.js";
import { errorResponse } from "../lambda/middleware/http-errors.js";

/** A route: method, path template (`/status/{key}`), handler. */
export interface Route {
  readonly method: string;
  readonly path: string;
  readonly handler: HttpHandler;
}

/** Largest body accepted, bytes. */
export const MAX_BODY_BYTES = 64 * 1024;

/** Matches a path against a template; the captured parameters, or `undefined`. */
export function matchPath(template: string, path: string): Record<string, string> | undefined {
  const want = template.split("/");
  const got = path.split("/");
  if (want.length !== got.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < want.length; i++) {
    const w = want[i] as string;
    const g = got[i] as string;
    if (w.startsWith("{") && w.endsWith("}")) {
      if (g === "") return undefined;
      try {
        params[w.slice(1, -1)] = decodeURIComponent(g);
      } catch {
        return undefined;
      }
    } else if (w !== g) return undefined;
  }
  return params;
}

/** Builds the v2 event for a request. */
export function toEvent(req: IncomingMessage, body: Buffer, route: Route, params: Record<string, string>): APIGatewayProxyEventV2 {
  const url = new URL(req.url ?? "/", "http://127.0.0.1");
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(",") : value;
  }
  const method = (req.method ?? "GET").toUpperCase();
  const now = Date.now();
  return {
    version: "2.0",
    routeKey: `${route.method} ${route.path}`,
    rawPath: url.pathname,
    rawQueryString: url.search.slice(1),
    headers,
    queryStringParameters: Object.fromEntries(url.searchParams),
    pathParameters: params,
    isBase64Encoded: false,
    body: body.length > 0 ? body.toString("utf8") : undefined,
    requestContext: {
      accountId: "000000000000",
      apiId: "local",
      domainName: "127.0.0.1",
      domainPrefix: "local",
      http: {
        method,
        path: url.pathname,
        protocol: "HTTP/1.1",
        sourceIp: req.socket.remoteAddress ?? "127.0.0.1",
        userAgent: headers["user-agent"] ?? "",
      },
      requestId: `local-${now}-${Math.random().toString(36).slice(2, 10)}`,
      routeKey: `${route.method} ${route.path}`,
      stage: "$default",
      time: new Date(now).toUTCString(),
      timeEpoch: now,
    },
  };
}

const CONTEXT = {
  callbackWaitsForEmptyEventLoop: false,
  functionName: "tokenbank-local",
  functionVersion: "$LATEST",
  invokedFunctionArn: "arn:aws:lambda:local:000000000000:function:tokenbank-local",
  memoryLimitInMB: "512",
  awsRequestId: "local",
  logGroupName: "local",
  logStreamName: "local",
  getRemainingTimeInMillis: () => 10_000,
  done: () => undefined,
  fail: () => undefined,
  succeed: () => undefined,
} satisfies Context;

function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on("end", () => resolve(size > MAX_BODY_BYTES ? undefined : Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

/** A running local HTTP server. */
export interface LocalServer {
  readonly url: string;
  readonly server: Server;
  close(): Promise<void>;
}

/** An injected fault: the next `count` requests on `path` get `status`, before or after the handler ran. */
export interface Fault {
  path: string;
  count: number;
  status: number;
  /** `before`: nothing reaches the handler; `after`: the handler runs (and charges), the answer is lost. */
  when: "before" | "after";
}

/** Serves `routes` on 127.0.0.1:`port` (0 = any free port). `faults` (mutable) injects failures. */
export function serveRoutes(routes: readonly Route[], port: number, faults: Fault[] = []): Promise<LocalServer> {
  const server = createServer(async (req, res) => {
    let result: Awaited<ReturnType<HttpHandler>>;
    const path0 = new URL(req.url ?? "/", "http://127.0.0.1").pathname;
    const fault = faults.find((f) => f.path === path0 && f.count > 0);
    if (fault) fault.count--;
    const injected = () => ({
      statusCode: fault?.status ?? 503,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ error: { code: "fault.injected", message: `fault injected (${fault?.when})` } }),
    });
    if (fault?.when === "before") {
      await readBody(req);
      res.writeHead(fault.status, { "content-type": "application/json" });
      res.end(injected().body);
      return;
    }
    try {
      const path = new URL(req.url ?? "/", "http://127.0.0.1").pathname;
      const method = (req.method ?? "GET").toUpperCase();
      const onPath = routes.map((r) => ({ r, params: matchPath(r.path, path) })).filter((m) => m.params !== undefined);
      const hit = onPath.find((m) => m.r.method === method);
      const body = await readBody(req);
      if (onPath.length === 0) {
        throw new NotFoundError("route.not_found", `no route ${method} ${path}`);
      } else if (!hit) {
        const allow = onPath.map((m) => m.r.method).join(", ");
        throw new ValidationError("route.method_not_allowed", `method ${method} is not allowed on ${path}`, { details: { allow } });
      } else if (body === undefined) {
        throw new PayloadTooLargeError("request.too_large", `the body is larger than ${MAX_BODY_BYTES} bytes`);
      }
      result = await hit.r.handler(toEvent(req, body, hit.r, hit.params ?? {}), CONTEXT);
    } catch (error) {
      result = errorResponse(error);
    }
    if (fault?.when === "after") result = injected();
    res.writeHead(result.statusCode ?? 200, (result.headers ?? {}) as Record<string, string>);
    res.end(result.body ?? "");
  });
  server.keepAliveTimeout = 30_000;
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      const address = server.address();
      const actual = typeof address === "object" && address ? address.port : port;
      resolve({
        url: `http://127.0.0.1:${actual}`,
        server,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
