/**
 * An open-loop load generator, run as its own process so that it never shares an event loop
 * with what it measures: `tsx bench/load/open-loop.ts '<plan JSON>'`.
 *
 * Each target gets requests on a fixed schedule (request i at `start + i / rate`), whatever the
 * answers, like production traffic. Latency is measured from the *scheduled* instant, so a server
 * that falls behind is charged for the queue it builds (no coordinated omission). Prints one
 * JSON line with, per target: the answers by status, the latency percentiles, and the scheduled
 * instant (ms from start) of every 200, for the bound and the ideal-bucket comparison.
 */
import { Agent, request } from "node:http";

/** One target of a plan. */
export interface LoadTarget {
  readonly name: string;
  /** Full URL, e.g. http://127.0.0.1:8787/rate. */
  readonly url: string;
  /** Requests per second. */
  readonly rate: number;
  readonly body: string;
  /** Send from this many seconds after the start… @default 0 */
  readonly fromS?: number | undefined;
  /** …until this many (exclusive). @default the plan's `seconds` */
  readonly untilS?: number | undefined;
}

/** What the generator is asked to do. */
export interface LoadPlan {
  readonly targets: readonly LoadTarget[];
  readonly seconds: number;
  /** Per-request timeout, ms (a timed-out request counts as status 0). @default 30000 */
  readonly timeoutMs?: number;
}

/** What it measured for one target. */
export interface TargetResult {
  readonly name: string;
  readonly sent: number;
  /** Answers by HTTP status ("0": no answer: network error or timeout). */
  readonly statuses: Record<string, number>;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly maxMs: number;
  /** Scheduled instants of the allowed requests, ms from the start. */
  readonly allowedAtMs: readonly number[];
  /** The largest lag of a send behind its schedule, ms (the generator's own health). */
  readonly maxSendLagMs: number;
  /** Up to 5 distinct bodies of answers other than 200/429 (what went wrong), with counts. */
  readonly badBodies: Record<string, number>;
  /** The slowest answers: [scheduled ms from start, latency ms, status], slowest first (at most 20). */
  readonly slowest: readonly (readonly [number, number, number])[];
}

const pct = (sorted: readonly number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;

/** Runs a plan and resolves with one result per target. */
export async function runPlan(plan: LoadPlan): Promise<TargetResult[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: 512 });
  const start = performance.now() + 50;
  const ends: Promise<void>[] = [];
  const results = plan.targets.map(async (target) => {
    const url = new URL(target.url);
    const fromMs = (target.fromS ?? 0) * 1000;
    const total = Math.floor(((target.untilS ?? plan.seconds) - (target.fromS ?? 0)) * target.rate);
    const latencies: number[] = [];
    const statuses: Record<string, number> = {};
    const allowedAtMs: number[] = [];
    const badBodies: Record<string, number> = {};
    const answers: [number, number, number][] = [];
    let maxSendLagMs = 0;
    const inflight: Promise<void>[] = [];
    const send = (due: number) =>
      new Promise<void>((resolve) => {
        maxSendLagMs = Math.max(maxSendLagMs, performance.now() - due);
        let done = false;
        const finish = (status: number, body = "") => {
          if (done) return;
          done = true;
          if (status !== 200 && status !== 429) {
            const text = `${status} ${body.slice(0, 300)}`;
            if (badBodies[text] !== undefined || Object.keys(badBodies).length < 5) badBodies[text] = (badBodies[text] ?? 0) + 1;
          }
          latencies.push(performance.now() - due);
          answers.push([due - start, performance.now() - due, status]);
          statuses[status] = (statuses[status] ?? 0) + 1;
          if (status === 200) allowedAtMs.push(due - start);
          resolve();
        };
        const req = request(
          {
            hostname: url.hostname,
            port: url.port,
            path: url.pathname,
            method: "POST",
            agent,
            headers: { "content-type": "application/json" },
          },
          (res) => {
            const status = res.statusCode ?? 0;
            let text = "";
            if (status === 200 || status === 429) res.resume();
            else res.on("data", (d: Buffer) => (text += d.toString()));
            res.on("end", () => finish(status, text));
            res.on("error", (e) => finish(0, String(e)));
          },
        );
        req.setTimeout(plan.timeoutMs ?? 30_000, () => {
          req.destroy();
          finish(0);
        });
        req.on("error", (e) => finish(0, String(e)));
        req.end(target.body);
      });
    for (let i = 0; i < total; i++) {
      const due = start + fromMs + (i * 1000) / target.rate;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      inflight.push(send(due));
    }
    const finished = Promise.all(inflight).then(() => undefined);
    ends.push(finished);
    await finished;
    latencies.sort((a, b) => a - b);
    return {
      name: target.name,
      sent: total,
      statuses,
      p50Ms: pct(latencies, 0.5),
      p99Ms: pct(latencies, 0.99),
      p999Ms: pct(latencies, 0.999),
      maxMs: latencies[latencies.length - 1] ?? 0,
      allowedAtMs,
      maxSendLagMs,
      badBodies,
      slowest: answers.sort((a, b) => b[1] - a[1]).slice(0, 20),
    };
  });
  const out = await Promise.all(results);
  agent.destroy();
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const plan = JSON.parse(process.argv[2] ?? "") as LoadPlan;
  const results = await runPlan(plan);
  process.stdout.write(`${JSON.stringify(results)}\n`);
}
