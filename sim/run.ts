/**
 * `npm run simulate -- --scenario NAME|FILE|all [--borrow on|off] [--seeds N] [--json]`
 * Runs scenarios in virtual time and prints ideal, admitted, utilisation, worst over-admission
 * and time to follow. `--seeds N` runs each scenario with seeds 1…N instead of its own and
 * prints the spread: one seed of a chaotic scenario can be 2–3 points off its mean.
 */
import { existsSync } from "node:fs";
import { parseArgs } from "node:util";
import { simulate } from "./engine.js";
import { loadScenario, parseScenario, SCENARIOS, type Scenario } from "./scenario.js";

const USAGE = `Usage: npm run simulate -- --scenario NAME|FILE|all [--borrow on|off] [--forecast on|off] [--seeds N] [--json]

Scenarios: ${Object.keys(SCENARIOS).join(", ")}, or a YAML/JSON file (format: README, "Simulator").`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      scenario: { type: "string", default: "all" },
      borrow: { type: "string", default: "on" },
      forecast: { type: "string", default: "on" },
      json: { type: "boolean", default: false },
      seeds: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return console.log(USAGE);
  if (values.borrow !== "on" && values.borrow !== "off") throw new Error(`--borrow: "${values.borrow}" must be on or off`);
  if (values.forecast !== "on" && values.forecast !== "off") throw new Error(`--forecast: "${values.forecast}" must be on or off`);
  const name = values.scenario;
  let scenarios: Scenario[];
  if (name === "all") scenarios = Object.entries(SCENARIOS).map(([n, s]) => parseScenario(s, n));
  else if (SCENARIOS[name]) scenarios = [parseScenario(SCENARIOS[name], name)];
  else if (existsSync(name)) scenarios = [loadScenario(name)];
  else throw new Error(`--scenario: "${name}" is neither a shipped scenario (${Object.keys(SCENARIOS).join(", ")}) nor a file`);

  const options = { borrow: values.borrow === "on", forecasts: values.forecast !== "off" };
  if (values.seeds !== undefined) {
    const n = Number(values.seeds);
    if (!Number.isInteger(n) || n < 1 || n > 1000) throw new Error(`--seeds: "${values.seeds}" must be a whole number from 1 to 1000`);
    const spread = [];
    for (const sc of scenarios) {
      const runs = [];
      for (let seed = 1; seed <= n; seed++) runs.push(await simulate({ ...sc, seed }, options));
      const u = runs.map((r) => r.utilisation);
      spread.push({
        scenario: sc.name,
        seeds: n,
        meanUtilisation: u.reduce((a, b) => a + b, 0) / n,
        minUtilisation: Math.min(...u),
        maxUtilisation: Math.max(...u),
        worstOverAdmission: Math.max(...runs.map((r) => r.worstOverAdmission)),
      });
    }
    if (values.json) return console.log(JSON.stringify(spread));
    const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
    return console.table(
      spread.map((r) => ({
        scenario: r.scenario,
        seeds: r.seeds,
        "mean utilisation": pct(r.meanUtilisation),
        min: pct(r.minUtilisation),
        max: pct(r.maxUtilisation),
        "worst over-admission (any seed)": Number(r.worstOverAdmission.toFixed(3)),
      })),
    );
  }

  const rows = [];
  for (const sc of scenarios) {
    const started = performance.now();
    const r = await simulate(sc, options);
    if (values.json) console.log(JSON.stringify(r));
    else
      rows.push({
        scenario: r.scenario,
        borrow: r.borrow ? "on" : "off",
        ideal: r.ideal,
        admitted: r.admitted,
        utilisation: `${(100 * r.utilisation).toFixed(2)}%`,
        "worst over-admission": Number(r.worstOverAdmission.toFixed(3)),
        "time to follow ms": r.timeToFollowMs ?? "-",
        "merges/gives/borrows/collects": `${r.merges}/${r.gives}/${r.borrows}/${r.collects}`,
        "window utilisation": r.window ? `${(100 * r.window.utilisation).toFixed(2)}% (${r.window.admitted}/${r.window.ideal})` : "-",
        "round trips to last token": r.roundTripsToLastToken === null ? "-" : Number(r.roundTripsToLastToken.toFixed(2)),
        "wall s": Number(((performance.now() - started) / 1000).toFixed(1)),
      });
  }
  if (!values.json) console.table(rows);
}

main().catch((error: unknown) => {
  console.error(`simulate: ${(error as Error).message}`);
  process.exit(2);
});
