/**
 * An engine pause under paced load, on the running local system, as issue 15's goal states it:
 * "an engine paused for 5 s: every /rate answered within 1.5 s (fail-open buckets allowed with
 * failOpen, others 503), nothing lost or double counted".
 *
 *   npx tsx bench/pause.ts [--regions 1|2] [--rate 25] [--seconds 15] [--pause-at 5] [--pause-s 5]
 *
 * DynamoDB Local and the local system (`npm start`'s entry point) each run in their own process;
 * this process only sends the load. Two buckets without refill (capacity 10⁶, so every request
 * fits): `pause-open` (`onError: allow`) and `pause-closed` (`onError: deny`). Each gets `--rate`
 * requests per second on a fixed schedule (open loop), every request with its own
 * `Idempotency-Key`. At `--pause-at` seconds the engine is stopped (SIGSTOP) for `--pause-s`
 * seconds, then resumed (SIGCONT). Latency is measured from each request's scheduled instant.
 * After the load, every request that was answered 5xx (or not at all) is sent again with its
 * own key, as a client retries, until it is answered 200 or 429. Then the bucket's tokens (from
 * `/status`) say what was charged: on the closed bucket it must equal the requests finally
 * allowed (every token charged exactly once); on the open one it must lie between the requests
 * allowed with a write and those plus the fail-open answers (a timed-out write may still have
 * applied: charged once, for a request that was allowed). Exits 1 when a goal is missed.
 */
import { writeFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startDynamoLocal } from "../local/dynamodb-local.js";
import { freePorts, startLocalSystemProcess } from "./load/processes.js";

const { values } = parseArgs({
  options: {
    regions: { type: "string", default: "1" },
    rate: { type: "string", default: "25" },
    seconds: { type: "string", default: "15" },
    "pause-at": { type: "string", default: "5" },
    "pause-s": { type: "string", default: "5" },
  },
});
const REGIONS = ["us-east-1", "eu-central-1"].slice(0, Number(values.regions));
const RATE = Number(values.rate);
const SECONDS = Number(values.seconds);
const PAUSE_AT_MS = Number(values["pause-at"]) * 1000;
const PAUSE_MS = Number(values["pause-s"]) * 1000;
const CAPACITY = 1_000_000;
const BUDGET_MS = 1500;
const WARM_UP_S = 5;

interface Answer {
  status: number;
  ms: number;
  failOpen: boolean;
  allowed: boolean;
  code?: string;
}

const agent = new Agent({ keepAlive: true, maxSockets: 1024 });

function send(url: string, body: string, idempotencyKey: string, timeoutMs = 30_000): Promise<Omit<Answer, "ms">> {
  return new Promise((resolve) => {
    const req = request(
      url,
      {
        method: "POST",
        agent,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body), "idempotency-key": idempotencyKey },
        timeout: timeoutMs,
      },
      (res) => {
        let text = "";
        res.on("data", (d: Buffer) => {
          text += d.toString();
        });
        res.on("end", () => {
          let parsed: { allowed?: boolean; failOpen?: boolean; error?: { code?: string } } = {};
          try {
            parsed = JSON.parse(text);
          } catch {
            // not JSON: counted by status
          }
          resolve({
            status: res.statusCode ?? 0,
            allowed: parsed.allowed === true,
            failOpen: parsed.failOpen === true,
            ...(parsed.error?.code ? { code: parsed.error.code } : {}),
          });
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => resolve({ status: 0, allowed: false, failOpen: false, code: "no answer" }));
    req.end(body);
  });
}

async function put(url: string, body: unknown): Promise<void> {
  const res = await fetch(url, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`PUT ${url}: ${res.status} ${await res.text()}`);
}

const pct = (sorted: readonly number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;

async function main(): Promise<number> {
  const ddb = await startDynamoLocal();
  const rulesFile = join(tmpdir(), `tokenbank-pause-rules-${process.pid}.yaml`);
  writeFileSync(rulesFile, "rules: []\n");
  const system = await startLocalSystemProcess({
    regions: REGIONS,
    lagMs: 200,
    endpoint: ddb.endpoint,
    table: `pause-${Date.now()}`,
    namespace: `pause${Date.now()}`,
    port: await freePorts(REGIONS.length),
    controlPort: await freePorts(1),
    rulesFile,
  });
  const paused = { from: Number.NaN, to: Number.NaN };
  try {
    const first = system.urls[0] as string;
    const buckets = [
      { key: "pause-open", onError: "allow" as const },
      { key: "pause-closed", onError: "deny" as const },
    ];
    for (const b of buckets) await put(`${first}/buckets/${b.key}`, { capacity: CAPACITY, refillRate: 0, onError: b.onError });
    await new Promise((r) => setTimeout(r, 1500));
    // Warm up (the engine's and the server's JITs, connections) with twice the load for a few
    // seconds on a bucket of its own (a cold engine may not keep up: its answers are not judged),
    // then let the engine's queue drain before the measured run.
    await put(`${first}/buckets/pause-warm`, { capacity: CAPACITY, refillRate: 0 });
    const warmStart = performance.now();
    const warming: Promise<unknown>[] = [];
    for (let i = 0; i < WARM_UP_S * RATE * 2; i++) {
      const wait = warmStart + (i * 500) / RATE - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      warming.push(send(`${system.urls[i % system.urls.length]}/rate`, JSON.stringify({ key: "pause-warm" }), `warm-${i}`));
    }
    await Promise.all(warming);
    await new Promise((r) => setTimeout(r, 3000));

    const answers = new Map<string, { bucket: string; url: string; atMs: number; first?: Answer; final?: Answer }>();
    const start = performance.now() + 100;
    const pending: Promise<void>[] = [];
    const total = Math.floor(SECONDS * RATE);
    const pauseTimer = setTimeout(() => {
      paused.from = performance.now() - start;
      process.kill(ddb.pid as number, "SIGSTOP");
      setTimeout(() => {
        process.kill(ddb.pid as number, "SIGCONT");
        paused.to = performance.now() - start;
      }, PAUSE_MS);
    }, PAUSE_AT_MS + 100);
    for (let i = 0; i < total; i++) {
      const atMs = (i * 1000) / RATE;
      const wait = start + atMs - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      for (const b of buckets) {
        const url = system.urls[i % system.urls.length] as string;
        const id = `${b.key}-${i}`;
        const entry: { bucket: string; url: string; atMs: number; first?: Answer } = { bucket: b.key, url, atMs };
        answers.set(id, entry);
        pending.push(
          send(`${url}/rate`, JSON.stringify({ key: b.key }), id).then((a) => {
            entry.first = { ...a, ms: performance.now() - start - atMs };
          }),
        );
      }
    }
    await Promise.all(pending);
    clearTimeout(pauseTimer);
    await new Promise((r) => setTimeout(r, Math.max(0, PAUSE_AT_MS + PAUSE_MS + 300 - (performance.now() - start))));

    // A client's retries: the same Idempotency-Key until the answer is 200 or 429.
    let retries = 0;
    for (const [id, e] of answers) {
      let a = e.first as Answer;
      for (let attempt = 0; attempt < 10 && a.status !== 200 && a.status !== 429; attempt++) {
        retries++;
        await new Promise((r) => setTimeout(r, 100));
        a = { ...(await send(`${e.url}/rate`, JSON.stringify({ key: e.bucket }), id)), ms: 0 };
      }
      (e as { final?: Answer }).final = a;
    }
    await new Promise((r) => setTimeout(r, 1500)); // replication of the last writes (multi-region)

    let failed = false;
    const rows: string[] = [];
    for (const b of buckets) {
      const mine = [...answers.values()].filter((e) => e.bucket === b.key);
      const firsts = mine.map((e) => e.first as Answer);
      const during = mine.filter((e) => e.atMs >= paused.from - 100 && e.atMs < paused.to).map((e) => e.first as Answer);
      const statuses = (list: readonly Answer[]) => {
        const by: Record<string, number> = {};
        for (const a of list) {
          const k = a.status === 200 && a.failOpen ? "200 failOpen" : a.code ? `${a.status} ${a.code}` : String(a.status);
          by[k] = (by[k] ?? 0) + 1;
        }
        return Object.entries(by)
          .map(([k, n]) => `${n}× ${k}`)
          .join(", ");
      };
      const ms = firsts.map((a) => a.ms).sort((x, y) => x - y);
      const late = firsts.filter((a) => a.ms > BUDGET_MS).length;
      const finals = mine.map((e) => e.final as Answer);
      const allowedWithWrite = finals.filter((a) => a.status === 200 && a.allowed && !a.failOpen).length;
      const failOpen = finals.filter((a) => a.failOpen).length;
      const status = (await (await fetch(`${first}/status/${b.key}`)).json()) as { tokens: number };
      const charged = CAPACITY - status.tokens;
      const exact =
        b.onError === "deny" ? charged === allowedWithWrite : charged >= allowedWithWrite && charged <= allowedWithWrite + failOpen;
      const wrongDuring = during.filter((a) =>
        b.onError === "allow" ? !(a.status === 200 && a.allowed) : a.status !== 200 && a.status !== 503,
      ).length;
      if (late > 0 || !exact || wrongDuring > 0 || finals.some((a) => a.status !== 200)) failed = true;
      rows.push(
        [
          `| ${b.key} (onError ${b.onError})`,
          String(mine.length),
          statuses(during),
          `${pct(ms, 0.5).toFixed(0)} / ${pct(ms, 0.99).toFixed(0)} / ${(ms.at(-1) ?? 0).toFixed(0)}`,
          String(late),
          String(allowedWithWrite),
          String(failOpen),
          String(charged),
          exact ? "yes" : "**no**",
        ].join(" | ") + " |",
      );
    }
    console.log(
      `\n${REGIONS.length} region(s), ${RATE} req/s per bucket for ${SECONDS} s; engine stopped from ${(paused.from / 1000).toFixed(2)} s to ${(paused.to / 1000).toFixed(2)} s; ${retries} retries after the pause\n`,
    );
    console.log(
      "| bucket | requests | answers sent during the pause | latency p50 / p99 / max, ms | answers > 1.5 s | allowed with a write (after retries) | allowed failOpen | tokens charged | charged exactly once |",
    );
    console.log("|---|---|---|---|---|---|---|---|---|");
    for (const r of rows) console.log(r);
    // The timeline: what each second's requests were answered, and how fast.
    console.log("\n| second | requests | p50 ms | max ms | answers |");
    console.log("|---|---|---|---|---|");
    for (let sec = 0; sec < SECONDS; sec++) {
      const inSec = [...answers.values()].filter((e) => e.atMs >= sec * 1000 && e.atMs < (sec + 1) * 1000).map((e) => e.first as Answer);
      const ms = inSec.map((a) => a.ms).sort((x, y) => x - y);
      const by: Record<string, number> = {};
      for (const a of inSec) {
        const k = a.status === 200 && a.failOpen ? "failOpen" : (a.code ?? String(a.status));
        by[k] = (by[k] ?? 0) + 1;
      }
      console.log(
        `| ${sec} | ${inSec.length} | ${pct(ms, 0.5).toFixed(0)} | ${(ms.at(-1) ?? 0).toFixed(0)} | ${Object.entries(by)
          .map(([k, n]) => `${n}× ${k}`)
          .join(", ")} |`,
      );
    }
    console.log(failed ? "\nFAILED: a goal was missed (see the table)" : "\nok: every goal met");
    return failed ? 1 : 0;
  } finally {
    try {
      process.kill(ddb.pid as number, "SIGCONT");
    } catch {
      // gone
    }
    await system.stop();
    await ddb.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(error);
    process.exit(2);
  },
);
