/**
 * The live console of the local system, on the control port (`http://127.0.0.1:8780/`): pick a
 * bucket and watch each region's tokens and shares over time, admissions and denials per
 * second, transfers (gives, lends, borrows) as they happen and the replication links, with
 * buttons for partition, heal and lag. Charts are drawn by Chart.js, served from node_modules.
 *
 *   GET /                       the page
 *   GET /console/chart.js       Chart.js (UMD build)
 *   GET /console/buckets        bucket keys in the first region's table, and the regions
 *   GET /console/state?key=K    one sample: every region's own row of K, counters, links
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { APIGatewayProxyEventV2 } from "aws-lambda";
import { level, sliceCapacity } from "../lambda/core/slice.js";
import { fromMillionths, TOKEN } from "../lambda/core/units.js";
import { httpHandler } from "../lambda/handlers/http.js";
import { jsonResponse } from "../lambda/middleware/http-errors.js";
import type { BucketStore } from "../lambda/ports/bucket-store.js";
import type { Clock } from "../lambda/ports/clock.js";
import type { GlobalTablesEmulator } from "./global-tables.js";
import type { Route } from "./http-adapter.js";

/** What the console reads of one region. */
export interface ConsoleRegion {
  readonly region: string;
  readonly url: string;
  readonly store: BucketStore;
  readonly limiter: { readonly stats: { decisions: number } };
  readonly merger: { readonly stats: { lends: number; merges: number; gives: number } };
}

/** One sample of a bucket, as the page charts it. */
export interface ConsoleSample {
  readonly atMs: number;
  readonly key: string;
  readonly partitioned: readonly string[];
  readonly lagMs: number;
  readonly regions: readonly {
    readonly region: string;
    readonly url: string;
    /** Whole tokens in the region's own slice now (null: no row yet). */
    readonly tokens: number | null;
    readonly capacity: number | null;
    readonly capShare: number | null;
    readonly rateShare: number | null;
    /** Monotone totals, tokens: admitted, denied; and capacity share given to peers, ppm. */
    readonly admitted: number;
    readonly denied: number;
    readonly givenPpm: number;
    readonly lends: number;
    readonly merges: number;
  }[];
  readonly links: readonly { readonly from: string; readonly to: string; readonly queued: number; readonly applied: number }[];
}

/** Chart.js's UMD build (its package exports do not list it: resolve the package, then the file). */
const CHART_JS = (() => {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve("chart.js")), "chart.umd.min.js");
})();

/** Routes of the console (mounted beside the control API). */
export function consoleRoutes(deps: { regions: readonly ConsoleRegion[]; gt: GlobalTablesEmulator; clock: Clock }): Route[] {
  const page = (): { statusCode: number; headers: Record<string, string>; body: string } => ({
    statusCode: 200,
    headers: { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" },
    body: CONSOLE_HTML,
  });
  const sample = async (key: string): Promise<ConsoleSample> => {
    const now = deps.clock.nowUs();
    const rows = await Promise.all(deps.regions.map((r) => r.store.getSlice(key)));
    return {
      atMs: Number(now / 1000n),
      key,
      partitioned: deps.gt.partitioned(),
      lagMs: deps.gt.lag,
      regions: deps.regions.map((r, i) => {
        const row = rows[i];
        const given = Object.values(row?.gives ?? {}).reduce((a, t) => a + t.cap, 0n);
        return {
          region: r.region,
          url: r.url,
          tokens: row ? Number(level(row, now) / TOKEN) : null,
          capacity: row ? Number(sliceCapacity(row) / TOKEN) : null,
          capShare: row ? fromMillionths(row.capShare) : null,
          rateShare: row ? fromMillionths(row.rateShare) : null,
          admitted: row ? Number(row.consumed / TOKEN) : 0,
          denied: row ? Number(row.denied / TOKEN) : 0,
          givenPpm: Number(given),
          lends: r.merger.stats.lends,
          merges: r.merger.stats.merges,
        };
      }),
      links: deps.gt.stats().map((l) => ({ from: l.from, to: l.to, queued: l.queued, applied: l.applied })),
    };
  };
  return [
    { method: "GET", path: "/", handler: httpHandler(async () => page()) },
    {
      method: "GET",
      path: "/console/chart.js",
      handler: httpHandler(async () => ({
        statusCode: 200,
        headers: { "content-type": "text/javascript; charset=utf-8", "cache-control": "max-age=3600" },
        body: readFileSync(CHART_JS, "utf8"),
      })),
    },
    {
      method: "GET",
      path: "/console/buckets",
      handler: httpHandler(async () => {
        const first = deps.regions[0];
        const { slices, configs } = first ? await first.store.scanAll() : { slices: [], configs: [] };
        const keys = [...new Set([...configs.map((c) => c.key), ...slices.map((s) => s.key)])].sort();
        return jsonResponse(200, { keys, regions: deps.regions.map((r) => r.region) });
      }),
    },
    {
      method: "GET",
      path: "/console/state",
      handler: httpHandler(async (event: APIGatewayProxyEventV2) => {
        const key = event.queryStringParameters?.key ?? "";
        if (key === "") return jsonResponse(400, { error: { code: "request.missing_key", message: "give ?key=BUCKET" } });
        return jsonResponse(200, await sample(key));
      }),
    },
  ];
}

/** The page: plain HTML and script, no build step; Chart.js from /console/chart.js. */
const CONSOLE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>tokenbank console</title>
<style>
  body { font: 14px system-ui, sans-serif; margin: 16px 24px; color: #1d2330; background: #fafbfc; }
  h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 14px; margin: 0 0 6px; color: #444; }
  .bar { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; margin: 10px 0 14px; }
  input, select, button { font: inherit; padding: 4px 8px; }
  button { cursor: pointer; border: 1px solid #9aa3b5; background: #fff; border-radius: 4px; }
  .grid { display: grid; grid-template-columns: 1fr 1fr; gap: 14px; }
  .card { background: #fff; border: 1px solid #e1e4ea; border-radius: 6px; padding: 10px 12px; }
  canvas { width: 100% !important; height: 210px !important; }
  table { border-collapse: collapse; width: 100%; } td, th { padding: 3px 8px; text-align: right; border-bottom: 1px solid #eef0f3; }
  td:first-child, th:first-child { text-align: left; }
  .cut { color: #b00020; font-weight: 600; } #log { max-height: 190px; overflow: auto; font: 12px ui-monospace, monospace; white-space: pre-wrap; }
</style>
</head>
<body>
<h1>tokenbank console</h1>
<div id="sub">local system: every region's slice of one bucket, live</div>
<div class="bar">
  <label>bucket <input id="key" list="keys" size="18" placeholder="bucket key"></label><datalist id="keys"></datalist>
  <button id="watch">watch</button>
  <span>|</span>
  <select id="region"></select>
  <button id="partition">partition</button>
  <button id="heal">heal</button>
  <span>|</span>
  <label>lag ms <input id="lag" type="number" min="0" step="100" size="6"></label><button id="setlag">set lag</button>
  <span id="status"></span>
</div>
<div class="grid">
  <div class="card"><h2>tokens in each region's slice</h2><canvas id="tokens"></canvas></div>
  <div class="card"><h2>capacity share (%)</h2><canvas id="shares"></canvas></div>
  <div class="card"><h2>admitted and denied per second</h2><canvas id="rates"></canvas></div>
  <div class="card"><h2>regions now</h2><table id="now"></table><h2 style="margin-top:10px">transfers and replication</h2><div id="log"></div></div>
</div>
<script src="/console/chart.js"></script>
<script>
const COLORS = ["#2563eb", "#d97706", "#059669", "#9333ea", "#dc2626"];
const WINDOW = 120;
const state = { key: "", samples: [], events: [] };
window.__console = state;
const $ = (id) => document.getElementById(id);
const chart = (id, yTitle) => new Chart($(id), {
  type: "line",
  data: { labels: [], datasets: [] },
  options: { animation: false, responsive: true, maintainAspectRatio: false, elements: { point: { radius: 0 } },
    scales: { x: { ticks: { maxTicksLimit: 8 } }, y: { beginAtZero: true, title: { display: true, text: yTitle } } },
    plugins: { legend: { position: "bottom" } } },
});
const charts = { tokens: chart("tokens", "tokens"), shares: chart("shares", "%"), rates: chart("rates", "per second") };
async function json(url, init) { const r = await fetch(url, init); return r.json(); }
async function post(path, body) { await json(path, { method: path === "/lag" ? "PUT" : "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body ?? {}) }); }
function log(text) { state.events.push(text); const el = $("log"); el.textContent = state.events.slice(-60).join("\\n"); el.scrollTop = el.scrollHeight; }
function series(name, f, i) { return { label: name, data: state.samples.map(f), borderColor: COLORS[i % COLORS.length], backgroundColor: COLORS[i % COLORS.length], borderWidth: 2, tension: 0.2 }; }
function draw() {
  const s = state.samples; if (s.length === 0) return;
  const t0 = s[0].atMs; const labels = s.map((x) => ((x.atMs - t0) / 1000).toFixed(1) + " s");
  const regions = s[s.length - 1].regions.map((r) => r.region);
  charts.tokens.data = { labels, datasets: regions.map((r, i) => series(r, (x) => x.regions[i].tokens, i)) };
  charts.shares.data = { labels, datasets: regions.map((r, i) => series(r, (x) => x.regions[i].capShare === null ? null : 100 * x.regions[i].capShare, i)) };
  const rate = (i, field) => (x, k) => { if (k === 0) return 0; const a = s[k - 1], dt = (x.atMs - a.atMs) / 1000; return dt > 0 ? Math.max(0, (x.regions[i][field] - a.regions[i][field]) / dt) : 0; };
  charts.rates.data = { labels, datasets: regions.flatMap((r, i) => [series(r + " admitted", rate(i, "admitted"), i), { ...series(r + " denied", rate(i, "denied"), i), borderDash: [5, 4] }]) };
  for (const c of Object.values(charts)) c.update();
  const last = s[s.length - 1];
  $("now").innerHTML = "<tr><th>region</th><th>tokens</th><th>slice cap.</th><th>share</th><th>admitted</th><th>denied</th></tr>" +
    last.regions.map((r) => "<tr data-region='" + r.region + "'><td class='" + (last.partitioned.includes(r.region) ? "cut" : "") + "'>" + r.region + (last.partitioned.includes(r.region) ? " (cut off)" : "") + "</td><td class='tokens'>" + (r.tokens ?? "–") + "</td><td>" + (r.capacity ?? "–") + "</td><td>" + (r.capShare === null ? "–" : (100 * r.capShare).toFixed(1) + "%") + "</td><td>" + r.admitted + "</td><td>" + r.denied + "</td></tr>").join("");
  $("status").textContent = "lag " + last.lagMs + " ms" + (last.partitioned.length ? " · cut off: " + last.partitioned.join(", ") : "");
}
function diff(a, b) {
  b.regions.forEach((r, i) => {
    const p = a.regions[i];
    if (r.givenPpm > p.givenPpm) log(new Date(b.atMs).toISOString().slice(11, 23) + " " + r.region + " gave " + ((r.givenPpm - p.givenPpm) / 1e4).toFixed(2) + "% of the capacity");
    if (r.lends > p.lends) log(new Date(b.atMs).toISOString().slice(11, 23) + " " + r.region + " lent to a dry peer (" + (r.lends - p.lends) + ")");
    if (r.capShare !== null && p.capShare !== null && r.capShare > p.capShare) log(new Date(b.atMs).toISOString().slice(11, 23) + " " + r.region + " received share: now " + (100 * r.capShare).toFixed(1) + "%");
  });
  const queued = b.links.filter((l) => l.queued > 0).map((l) => l.from + "→" + l.to + " " + l.queued).join(", ");
  if (queued && b.partitioned.length) log(new Date(b.atMs).toISOString().slice(11, 23) + " replication held back: " + queued);
}
async function tick() {
  if (state.key) {
    try {
      const s = await json("/console/state?key=" + encodeURIComponent(state.key));
      const prev = state.samples[state.samples.length - 1];
      state.samples.push(s); if (state.samples.length > WINDOW) state.samples.shift();
      if (prev) diff(prev, s);
      draw();
    } catch (e) { $("status").textContent = "no answer: " + e; }
  }
  setTimeout(tick, 250);
}
async function init() {
  const { keys, regions } = await json("/console/buckets");
  $("keys").innerHTML = keys.map((k) => "<option value='" + k.replace(/'/g, "&#39;") + "'>").join("");
  const params = new URLSearchParams(location.search);
  $("key").value = params.get("key") ?? keys[0] ?? "";
  const first = await json("/replication");
  $("lag").value = first.lagMs;
  $("region").innerHTML = regions.map((r) => "<option>" + r + "</option>").join("");
  $("watch").onclick = () => { state.key = $("key").value.trim(); state.samples = []; state.events = []; log("watching " + state.key); };
  $("partition").onclick = async () => { await post("/partition", { region: $("region").value }); log("partitioned " + $("region").value); };
  $("heal").onclick = async () => { await post("/heal"); log("healed"); };
  $("setlag").onclick = async () => { await post("/lag", { ms: Number($("lag").value) }); log("lag set to " + $("lag").value + " ms"); };
  if ($("key").value) $("watch").click();
  tick();
}
init();
</script>
</body>
</html>
`;
