/**
 * `npm run bench`: every benchmark in one run, on this machine. Prints the tables and writes
 * `docs/benchmarks.md` and its SVG charts (`docs/bench-*.svg`). Every participant that serves
 * requests runs in its own process, and load comes from yet another (open-loop for the load
 * regimes, autocannon for the hot path): a generator inside the serving process measures its
 * own event loop.
 * Options: --seconds N (per hot-path phase, default 5), --load-seconds N (per load regime,
 * default 30), --local-seconds N (per local accuracy run, default 30), --stretch (add 3 × 100/s),
 * --only LIST (any of overhead,hot,load,bursts,jobs,local,sim; default all); --buckets N for the jobs phase (100000).
 */
import { writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { parseArgs } from "node:util";
import { startDynamoLocal } from "../local/dynamodb-local.js";
import { simulateBaseline } from "../sim/baselines.js";
import { simulate } from "../sim/engine.js";
import { CAPACITY_SCENARIOS, parseScenario, SCENARIOS } from "../sim/scenario.js";
import { benchJobs } from "./jobs.js";
import { type BurstResult, burstCases, runBurstCase } from "./load/bursts.js";
import { type HotPathRow, hotPath } from "./load/hot-path.js";
import { defaultRegimes, type RegimeResult, runRegime } from "./load/regimes.js";
import { type LocalAccuracyRow, localAccuracy } from "./local-accuracy.js";
import { bundles, handlerOverhead } from "./overhead.js";
import { bars, lines } from "./svg.js";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "5" },
    "load-seconds": { type: "string", default: "30" },
    "local-seconds": { type: "string", default: "30" },
    stretch: { type: "boolean", default: false },
    only: { type: "string", default: "overhead,hot,load,bursts,jobs,local,sim" },
    buckets: { type: "string", default: "100000" },
    /** Run only the load regimes whose name contains this text (e.g. "regions"). */
    regime: { type: "string", default: "" },
  },
});
const seconds = Number(values.seconds);
const loadSeconds = Number(values["load-seconds"]);
const localSeconds = Number(values["local-seconds"]);
const only = new Set(values.only.split(","));
const allRegimes = defaultRegimes(loadSeconds, values.stretch ?? false);
const regimes = allRegimes.filter((r) => r.name.includes(values.regime));
if (only.has("load") && regimes.length === 0) {
  console.error(`--regime: no load regime's name contains "${values.regime}" (${allRegimes.map((r) => r.name).join("; ")})`);
  process.exit(2);
}
const command = `npm run bench -- --seconds ${seconds} --load-seconds ${loadSeconds} --local-seconds ${localSeconds}${values.stretch ? " --stretch" : ""}${values.regime ? ` --regime "${values.regime}"` : ""}${values.only === "overhead,hot,load,bursts,jobs,local,sim" ? "" : ` --only ${values.only}`}`;
const started = new Date();
const md: string[] = [];
const table = (rows: Record<string, unknown>[]) => {
  const cols = Object.keys(rows[0] ?? {});
  return [
    `| ${cols.join(" | ")} |`,
    `|${cols.map(() => "---").join("|")}|`,
    ...rows.map((r) => `| ${cols.map((c) => String(r[c])).join(" | ")} |`),
  ].join("\n");
};
const show = (title: string, rows: Record<string, unknown>[], note = "") => {
  console.log(`\n${title}`);
  console.table(rows);
  md.push(`## ${title}\n\n${note ? `${note}\n\n` : ""}${table(rows)}\n`);
};
const f = (x: number, digits = 2) => x.toFixed(digits);
console.log(`tokenbank benchmarks — ${cpus().length} cores, node ${process.version}, ${started.toISOString()}\ncommand: ${command}`);

// 0. Our own overhead, first: measured on a quiet machine (the load phases below keep it busy for a while).
if (only.has("overhead")) {
  const cpu = await handlerOverhead(20_000);
  show("Own overhead: rate handler time per decision, in-memory store (no database)", [
    {
      handler: "tokenbank POST /rate (one busy key: leases)",
      "p50 µs": cpu.rate.p50.toFixed(1),
      "p99 µs": cpu.rate.p99.toFixed(1),
      "× trivial middy handler (same run)": (cpu.rate.p50 / cpu.baseline.p50).toFixed(1),
    },
    {
      handler: "tokenbank POST /rate, leaseMs 0 (every decision a take)",
      "p50 µs": cpu.perWrite.p50.toFixed(1),
      "p99 µs": cpu.perWrite.p99.toFixed(1),
      "× trivial middy handler (same run)": (cpu.perWrite.p50 / cpu.baseline.p50).toFixed(1),
    },
    {
      handler: "trivial middy handler (baseline)",
      "p50 µs": cpu.baseline.p50.toFixed(1),
      "p99 µs": cpu.baseline.p99.toFixed(1),
      "× trivial middy handler (same run)": "1.0",
    },
  ]);
  const b = await bundles(process.cwd());
  show(
    `Own overhead: Lambda bundles (minified ESM) and module initialisation (median of ${b.rounds} fresh processes, round-robin; empty module: ${b.baselineInitMs.toFixed(1)} ms)`,
    b.rows.map((r) => ({
      function: r.fn,
      "bundle KB": (r.bytes / 1024).toFixed(0),
      "init ms": r.initMs.toFixed(1),
      "init − empty module, ms": (r.initMs - b.baselineInitMs).toFixed(1),
    })),
  );
}

/** The local system's refill rate (capacity and demand scale with it): what one DynamoDB Local serves for four strategies at once. */
const LOCAL_RATE = 5;
let local: LocalAccuracyRow[] = [];
if (only.has("hot") || only.has("load")) {
  let ddb = await startDynamoLocal();
  try {
    // 1. Hot path against the floor and the alternatives: separate processes, one engine, one run.
    if (only.has("hot")) {
      const rows: HotPathRow[] = await hotPath(ddb, { seconds, connections: [1, 16, 64], rounds: 3 });
      const of = (prefix: string, c: number) =>
        rows.find((r) => r.system.startsWith(prefix) && r.connections === c)?.decisionsPerSecond ?? 1;
      show(
        "Hot path: allowed traffic on one busy key, every system in its own process, autocannon in another, one DynamoDB Local",
        rows.map((r) => ({
          system: r.system,
          connections: r.connections,
          "decisions/s (median of 3 rounds)": Math.round(r.decisionsPerSecond),
          rounds: r.rounds.join(" / "),
          "× single-write floor": f(r.decisionsPerSecond / of("single-write", r.connections)),
          "× rate-limiter-flexible": f(r.decisionsPerSecond / of("rate-limiter", r.connections)),
          "p50 ms": r.p50Ms,
          "p99 ms": r.p99Ms,
          "DynamoDB calls/decision": f(r.callsPerDecision, 3),
          "engine CPU ms/decision": f(r.engineCpuMsPerDecision),
          "server CPU ms/decision": f(r.serverCpuMsPerDecision),
          "errors (not 200/429)": r.errors,
        })),
        "The floor is the physical floor of this design: one conditional `UpdateItem` of a GCRA arrival time per decision, on a table with a stream (as a global table has), no cache, no version, no counters. Engine CPU is DynamoDB Local's process time over the phase; server CPU is the serving process's own.",
      );
      const systems = [...new Set(rows.map((r) => r.system))];
      const conns = [1, 16, 64];
      writeFileSync(
        "docs/bench-throughput.svg",
        bars(
          "Decisions per second (one busy key, separate processes)",
          "decisions/s",
          conns.map((c) => `${c} connections`),
          systems.map((s) => ({
            name: s.replace(/ \(.*\)/, ""),
            values: conns.map((c) => rows.find((r) => r.system === s && r.connections === c)?.decisionsPerSecond ?? 0),
          })),
        ),
      );
    }
    // 2. Open-loop load regimes on the local system (its own process), near and far from the boundary,
    // on a fresh engine: after the hot path's hundreds of thousands of writes (and stream records),
    // an in-memory DynamoDB Local spends most of its CPU elsewhere and every call times out.
    if (only.has("load")) {
      if (only.has("hot")) {
        await ddb.stop();
        ddb = await startDynamoLocal();
      }
      const results: RegimeResult[] = [];
      for (const [i, regime] of regimes.entries()) {
        console.log(`load regime: ${regime.name}`);
        results.push(await runRegime(ddb, regime, i));
      }
      const callsOf = (r: RegimeResult) =>
        Object.entries(r.callsPerDecision)
          .filter(([k]) => !k.startsWith("failed."))
          .sort(([, a], [, b]) => b - a)
          .map(([k, v]) => `${k} ${f(v, 3)}`)
          .join(", ");
      show(
        `Open-loop load on one key (C = 60, r = 30/s), the local system in its own process, the generator in another, ${loadSeconds} s per regime`,
        results.map((r) => ({
          regime: r.regime.name,
          decisions: r.decisions,
          "not 200/429":
            Object.entries(r.bad).length === 0
              ? 0
              : Object.entries(r.bad)
                  .map(([s, n]) => `${n}× ${s}`)
                  .join(", "),
          "idle p99 ms": f(r.idleP99Ms, 1),
          "p50 ms": f(r.p50Ms, 1),
          "p99 ms": f(r.p99Ms, 1),
          "p99.9 ms": f(r.p999Ms, 1),
          "p99 / idle p99": f(r.p99Ms / r.idleP99Ms, 1),
          admitted: r.allowed,
          "bound C + r·T": r.bound,
          "ideal central bucket": r.ideal,
          "admitted / ideal": `${f((100 * r.allowed) / Math.max(1, r.ideal), 1)}%`,
          "take writes per decision (0/1/2/3+)": `${r.writesPerDecision[0] ?? 0}/${r.writesPerDecision[1] ?? 0}/${r.writesPerDecision[2] ?? 0}/${r.writesPerDecision.slice(3).reduce((a, b) => a + b, 0)}`,
          "failed takes per 1000 decisions, by cause":
            Object.entries(r.takeFailuresPer1000)
              .map(([k, v]) => `${k} ${f(v, 1)}`)
              .join(", ") || "none",
          "DynamoDB calls per decision, by writer": callsOf(r),
          "engine CPU ms/decision": f(r.engineCpuMsPerDecision),
          "shares agree after heal":
            r.agreeAfterHealS === undefined ? (r.regime.partition ? "not within 60 s" : "-") : `${f(r.agreeAfterHealS, 1)} s`,
        })),
        "Requests are sent on a fixed schedule whatever the answers; latency counts from the scheduled instant, so a server that falls behind is charged for its queue. Idle p99 is the same system at 5 requests/s per region on an unconstrained bucket, in the same run. `denied` in the failure causes is a true shortage (not contention); `version:W` is a take that lost to background writer W; `take-race` a full-bucket write that lost to a concurrent take (its retry is the commuting form). Calls are every DynamoDB call of the rate and merge functions, by the writer that made it (`failed.W`: conditions that failed). The bound counts the load's span only; admissions are decided up to one latency later.",
      );
    }
  } finally {
    await ddb.stop();
  }
}

// 2b. Capacity-dominated bursts on the local system (fresh engine: see above).
if (only.has("bursts")) {
  const ddbBursts = await startDynamoLocal();
  try {
    const rows: BurstResult[] = [];
    for (const [i, c] of burstCases().entries()) rows.push(await runBurstCase(ddbBursts, c, i));
    show(
      "Capacity-dominated bursts on the local system (in its own process; open-loop load from another)",
      rows.map((r) => ({
        case: r.name,
        regions: r.regions,
        sent: r.sent,
        admitted: r.admitted,
        "ideal central bucket": r.ideal,
        "admitted / ideal": `${f((100 * r.admitted) / Math.max(1, r.ideal), 1)}%`,
        "bound C + r·T": r.bound,
        "not 200/429": r.bad,
        "p99 ms": f(r.p99Ms, 0),
      })),
      "The simulator's capacity-dominated scenarios (`npm run simulate -- --scenario one-region-burst|small-bucket|rotating-bursts`) on the real system: every region of the local system shares one process, so during a burst a borrow call queues behind the burst's own requests (its 500 ms timeout is a refusal).",
    );
  } finally {
    await ddbBursts.stop();
  }
}

// 2c. The scheduled jobs over many buckets (fresh engine).
if (only.has("jobs")) {
  const buckets = Number(values.buckets);
  const ddbJobs = await startDynamoLocal();
  try {
    const out = await benchJobs(ddbJobs, buckets);
    show(
      `Scheduled jobs over ${buckets.toLocaleString("en")} buckets (two-region replica on DynamoDB Local, 1% with a predictive throttle to restore; 40 s budget per run, as deployed with a 60 s timeout)`,
      out.runs.map((r) => ({
        job: r.job,
        run: r.run,
        seconds: f(r.seconds, 1),
        "buckets visited": r.visited,
        "pass complete": r.complete ? "yes" : "no (resumes)",
        "throttles restored": r.restored,
        "DynamoDB calls": Object.entries(r.calls)
          .map(([k, v]) => `${k} ${v}`)
          .join(", "),
      })),
      `Populating took ${f(out.populateS, 0)} s. Each run is what one scheduled invocation does; a run that stops for time saves a checkpoint and the next one resumes there.`,
    );
  } finally {
    await ddbJobs.stop();
  }
}

// 3. Global accuracy on the local multi-region system, on a fresh DynamoDB Local (in memory: the
// hot path's many thousands of writes would slow it down), warmed up by a discarded run first.
if (only.has("local")) {
  const ddbLocal = await startDynamoLocal();
  try {
    local = await localAccuracy(ddbLocal.endpoint, {
      traces: ["follow-the-sun", "steady"],
      lagsMs: [100, 1000, 5000],
      durationS: localSeconds,
      refillRate: LOCAL_RATE,
      warmUpS: 20,
    });
  } finally {
    await ddbLocal.stop();
  }
}

if (local.length > 0) {
  show(
    `Global accuracy (local multi-region system: 2 regions, DynamoDB Local, Global Tables emulator; traces compressed to ${localSeconds} s at r = ${LOCAL_RATE}/s, C = ${2 * LOCAL_RATE}): proven worst over-admission and utilisation`,
    local.map((r) => ({
      scenario: r.scenario,
      lag: `${r.lagMs / 1000} s`,
      strategy: r.strategy,
      ideal: r.ideal,
      admitted: r.admitted,
      utilisation: `${(100 * r.utilisation).toFixed(2)}%`,
      "proven worst over-admission (tokens)": Number(r.worstOverAdmission.toFixed(2)),
      "p50 ms": r.p50Ms.toFixed(1),
      errors: r.errors,
    })),
  );
  const localRuns = local.filter((r) => r.scenario === "follow-the-sun" && r.lagMs === 1000);
  if (localRuns.length > 0) {
    const binS = localRuns[0]?.timeline.binS ?? 1;
    writeFileSync(
      "docs/bench-accuracy-local.svg",
      lines(
        "Local system, follow-the-sun, lag 1 s: admitted / ideal per bin",
        "seconds",
        "admitted / ideal",
        (localRuns[0]?.timeline.admitted ?? []).map((_, i) => (i + 1) * binS),
        localRuns.map((r) => ({
          name: r.strategy,
          values: r.timeline.admitted.map((a, i) => a / Math.max(1, r.timeline.ideal[i] ?? 1)),
        })),
      ),
    );
  }
}

if (only.has("sim")) {
  // 4. Global accuracy in the simulator: the same demand against four strategies, at three lags.
  const accuracy: Record<string, unknown>[] = [];
  let chart: { name: string; values: number[] }[] = [];
  for (const name of ["follow-the-sun", "steady"]) {
    for (const lagMs of [100, 1000, 5000]) {
      const sc = parseScenario({ ...(SCENARIOS[name] as object), lagMs }, name);
      const runs = [
        { strategy: "(a) shared item, LWW", r: simulateBaseline(sc, "lww", lagMs) },
        { strategy: "(b) static split", r: await simulate(sc, { borrow: false, rebalance: false }) },
        { strategy: "(c) G-counter", r: simulateBaseline(sc, "gcounter", lagMs) },
        { strategy: "(d) tokenbank", r: await simulate(sc, { borrow: true }) },
      ];
      for (const { strategy, r } of runs) {
        accuracy.push({
          scenario: name,
          lag: `${lagMs / 1000} s`,
          strategy,
          ideal: r.ideal,
          admitted: r.admitted,
          utilisation: `${(100 * r.utilisation).toFixed(2)}%`,
          "worst over-admission (tokens)": Number(r.worstOverAdmission.toFixed(2)),
        });
      }
      if (name === "follow-the-sun" && lagMs === 1000) {
        chart = runs.map(({ strategy, r }) => ({
          name: strategy,
          values: r.timeline.admitted.map((a, i) => a / Math.max(1, r.timeline.ideal[i] ?? 1)),
        }));
      }
    }
  }
  show("Global accuracy (simulator): worst over-admission and utilisation", accuracy);
  const capacityRows: Record<string, unknown>[] = [];
  for (const name of Object.keys(CAPACITY_SCENARIOS)) {
    const sc = parseScenario(SCENARIOS[name], name);
    for (const [strategy, options] of [
      ["static split", { borrow: false, rebalance: false }],
      ["tokenbank", { borrow: true }],
    ] as const) {
      const r = await simulate(sc, options);
      capacityRows.push({
        scenario: name,
        regions: sc.regions.length,
        strategy,
        ideal: r.ideal,
        admitted: r.admitted,
        utilisation: `${(100 * r.utilisation).toFixed(2)}%`,
        "worst over-admission (tokens)": Number(r.worstOverAdmission.toFixed(2)),
        "borrow calls": r.borrows,
      });
    }
  }
  show(
    "Capacity-dominated bursts (simulator): utilisation against one central bucket",
    capacityRows,
    "`npm run simulate -- --scenario NAME`. Before issue 13 (borrowing asked one peer, which kept its floor): one-region-burst 62.16%, small-bucket 66.94%, rotating-bursts 86.04%.",
  );
  const xs = (chart[0]?.values ?? []).map((_, i) => i * 10 + 10);
  writeFileSync(
    "docs/bench-accuracy.svg",
    lines("follow-the-sun, lag 1 s: admitted / ideal per 10 s", "seconds", "admitted / ideal", xs, chart),
  );
}

// Only a run of every phase and every regime rewrites the page.
if (only.size === 7 && !values.regime) {
  writeFileSync(
    "docs/benchmarks.md",
    `# Benchmarks

Measured by \`${command}\` on ${started.toISOString().slice(0, 10)} (${cpus().length} cores, Node ${process.version}), every number printed by that run. DynamoDB Local (the real engine, on Java) shares the two cores with the load generator and the servers, so absolute numbers are far below real DynamoDB; compare the ratios within one run.

![throughput](bench-throughput.svg)
![accuracy](bench-accuracy.svg)
![accuracy on the local system](bench-accuracy-local.svg)

How the accuracy runs compare the strategies: (a) one shared bucket item replicated last-writer-wins, (b) a bucket per region with a static half of the limit, (c) a bucket per region debited by every region's replicated consumption counter (G-counter), (d) tokenbank. In the simulator, (b) and (d) are tokenbank's own code in virtual time, (a) and (c) are models over the same arrivals and lag model, and over-admission is exact. On the local system, all four are real clients of real DynamoDB Local tables replicated by the same Global Tables emulator at the same lag, fed the same open-loop arrivals at once (\`bench/local-accuracy.ts\`, \`bench/local-baselines.ts\`). Wall-clock admissions are only known to lie between a request's send and its answer, so the local column is the excess those intervals *prove*; it cannot see an excess smaller than the refill during one request's latency.

${md.join("\n")}
`,
  );
  console.log("\nwrote docs/benchmarks.md and docs/bench-*.svg");
} else console.log("\n(--only or --regime: docs/benchmarks.md left as it is)");
