/** Tiny SVG charts (no dependencies): grouped bars, lines, and curves over labelled points on a log axis. */
const COLORS = ["#2b6cb0", "#c05621", "#2f855a", "#6b46c1", "#b7791f", "#4a5568"];
const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");

/** A chart's opening: the svg element, its accessible title, a white background and the heading. */
const heading = (title: string, W: number, H: number) =>
  `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12" role="img"><title>${esc(title)}</title><rect width="${W}" height="${H}" fill="white"/>` +
  `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`;

/** Grouped bars: one group per label, one bar per series. */
export function bars(
  title: string,
  unit: string,
  groups: readonly string[],
  series: readonly { name: string; values: readonly number[] }[],
): string {
  const W = 720;
  const H = 360;
  const pad = { l: 60, r: 20, t: 40, b: 70 };
  const max = Math.max(1e-9, ...series.flatMap((s) => s.values));
  const gw = (W - pad.l - pad.r) / groups.length;
  const bw = (gw * 0.8) / series.length;
  const y = (v: number) => pad.t + (H - pad.t - pad.b) * (1 - v / max);
  let out = heading(title, W, H);
  out += `<line x1="${pad.l}" y1="${y(0)}" x2="${W - pad.r}" y2="${y(0)}" stroke="#333"/>`;
  for (let k = 0; k <= 4; k++) {
    const v = (max * k) / 4;
    out += `<text x="${pad.l - 6}" y="${y(v) + 4}" text-anchor="end" fill="#555">${Number(v.toPrecision(3))}</text><line x1="${pad.l}" y1="${y(v)}" x2="${W - pad.r}" y2="${y(v)}" stroke="#eee"/>`;
  }
  out += `<text x="14" y="${H / 2}" transform="rotate(-90 14 ${H / 2})" text-anchor="middle" fill="#555">${esc(unit)}</text>`;
  groups.forEach((g, i) => {
    const x0 = pad.l + i * gw + gw * 0.1;
    series.forEach((s, j) => {
      const v = s.values[i] ?? 0;
      out += `<rect x="${x0 + j * bw}" y="${y(v)}" width="${bw - 2}" height="${y(0) - y(v)}" fill="${COLORS[j % COLORS.length]}"><title>${esc(`${s.name} ${g}: ${v}`)}</title></rect>`;
    });
    out += `<text x="${x0 + (bw * series.length) / 2}" y="${H - pad.b + 16}" text-anchor="middle">${esc(g)}</text>`;
  });
  series.forEach((s, j) => {
    out += `<rect x="${pad.l + j * 170}" y="${H - 26}" width="12" height="12" fill="${COLORS[j % COLORS.length]}"/><text x="${pad.l + j * 170 + 16}" y="${H - 16}">${esc(s.name)}</text>`;
  });
  return `${out}</svg>\n`;
}

/** Lines over x. */
export function lines(
  title: string,
  xLabel: string,
  yLabel: string,
  xs: readonly number[],
  series: readonly { name: string; values: readonly number[] }[],
): string {
  const W = 720;
  const H = 360;
  const pad = { l: 60, r: 20, t: 40, b: 60 };
  const all = series.flatMap((s) => s.values);
  const max = Math.max(...all) * 1.05;
  const min = Math.min(0, ...all);
  const xMax = Math.max(...xs);
  const x = (v: number) => pad.l + ((W - pad.l - pad.r) * v) / xMax;
  const y = (v: number) => pad.t + (H - pad.t - pad.b) * (1 - (v - min) / (max - min));
  let out = heading(title, W, H);
  for (let k = 0; k <= 4; k++) {
    const v = min + ((max - min) * k) / 4;
    out += `<text x="${pad.l - 6}" y="${y(v) + 4}" text-anchor="end" fill="#555">${Number(v.toPrecision(3))}</text><line x1="${pad.l}" y1="${y(v)}" x2="${W - pad.r}" y2="${y(v)}" stroke="#eee"/>`;
  }
  for (let k = 0; k <= 6; k++) {
    const v = (xMax * k) / 6;
    out += `<text x="${x(v)}" y="${H - pad.b + 16}" text-anchor="middle" fill="#555">${Math.round(v)}</text>`;
  }
  out += `<text x="${W / 2}" y="${H - 30}" text-anchor="middle" fill="#555">${esc(xLabel)}</text><text x="14" y="${H / 2}" transform="rotate(-90 14 ${H / 2})" text-anchor="middle" fill="#555">${esc(yLabel)}</text>`;
  series.forEach((s, j) => {
    const pts = s.values.map((v, i) => `${x(xs[i] ?? 0).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    out += `<polyline points="${pts}" fill="none" stroke="${COLORS[j % COLORS.length]}" stroke-width="2"/>`;
    out += `<rect x="${pad.l + j * 150}" y="${H - 20}" width="12" height="12" fill="${COLORS[j % COLORS.length]}"/><text x="${pad.l + j * 150 + 16}" y="${H - 10}">${esc(s.name)}</text>`;
  });
  return `${out}</svg>\n`;
}

/** One curve per series over labelled x positions, y on a log scale (for latency percentiles). */
export function logCurves(
  title: string,
  xLabel: string,
  yLabel: string,
  labels: readonly string[],
  series: readonly { name: string; values: readonly number[] }[],
): string {
  const W = 720;
  const H = 380;
  const pad = { l: 60, r: 20, t: 40, b: 80 };
  const all = series.flatMap((s) => s.values).filter((v) => v > 0 && Number.isFinite(v));
  const lo = Math.floor(Math.log10(Math.min(...all, 1)));
  const hi = Math.ceil(Math.log10(Math.max(...all, 10)));
  const x = (i: number) => pad.l + ((W - pad.l - pad.r) * i) / Math.max(1, labels.length - 1);
  const y = (v: number) => pad.t + (H - pad.t - pad.b) * (1 - (Math.log10(Math.max(v, 10 ** lo)) - lo) / Math.max(1, hi - lo));
  let out = heading(title, W, H);
  for (let k = lo; k <= hi; k++) {
    out += `<text x="${pad.l - 6}" y="${y(10 ** k) + 4}" text-anchor="end" fill="#555">${Number((10 ** k).toPrecision(3))}</text><line x1="${pad.l}" y1="${y(10 ** k)}" x2="${W - pad.r}" y2="${y(10 ** k)}" stroke="#eee"/>`;
  }
  labels.forEach((l, i) => {
    out += `<text x="${x(i)}" y="${H - pad.b + 16}" text-anchor="middle" fill="#555">${esc(l)}</text>`;
  });
  out += `<text x="${W / 2}" y="${H - pad.b + 36}" text-anchor="middle" fill="#555">${esc(xLabel)}</text><text x="14" y="${H / 2}" transform="rotate(-90 14 ${H / 2})" text-anchor="middle" fill="#555">${esc(yLabel)}</text>`;
  series.forEach((s, j) => {
    const color = COLORS[j % COLORS.length];
    const pts = s.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    out += `<polyline points="${pts}" fill="none" stroke="${color}" stroke-width="2"/>`;
    s.values.forEach((v, i) => {
      out += `<circle cx="${x(i).toFixed(1)}" cy="${y(v).toFixed(1)}" r="3" fill="${color}"><title>${esc(`${s.name} p${labels[i]}: ${v} ms`)}</title></circle>`;
    });
    out += `<rect x="${pad.l + (j % 3) * 210}" y="${H - 30 + Math.floor(j / 3) * 16}" width="12" height="12" fill="${color}"/><text x="${pad.l + (j % 3) * 210 + 16}" y="${H - 20 + Math.floor(j / 3) * 16}">${esc(s.name)}</text>`;
  });
  return `${out}</svg>\n`;
}
