// "Performance over time": two uPlot charts (static/vendor) with one cursor. The first plots
// views, clicks and conversions; the second revenue (one line per currency, left axis) and the
// conversion rate (right axis). Dashed lines are the compared period, matched day by day (or
// week by week) from its start. Hovering, or focusing the charts and pressing the arrow keys,
// shows the exact values of that day or week for both periods in #chart-values, read from the
// same /timeseries answer the table below shows. Loaded before app.js; uses its helpers
// (fmtCount, fmtRate, fmtMoneyOne, esc) at call time.
"use strict";

const chartState = { plots: [], shape: "", ts: null, idx: null, first: null };
const TRAFFIC = [["banner_views", "Views", "#3b5bdb"], ["banner_clicks", "Clicks", "#c2410c"],
                 ["conversions", "Conversions", "#2b8a3e"]];
const CURRENCY_COLORS = ["#7048e8", "#0b7285", "#5c940d", "#862e9c"];
const RATE_COLOR = "#c2255c";
const DAY_S = 86400;

function pointTime(pt) { return Date.parse(`${pt.start}T00:00:00Z`) / 1000; }
function pointLabel(pt) { return pt.start === pt.end ? pt.start : `${pt.start} – ${pt.end}`; }
// A currency's minor digits, memoized: building an Intl.NumberFormat per value took ~0.3 ms, so
// a year of daily points (365 x currencies x 2 periods) spent ~250 ms there at each redraw.
const DIGITS = new Map();
function minorDigits(currency) {
  if (!DIGITS.has(currency)) {
    try { DIGITS.set(currency, new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits); }
    catch { DIGITS.set(currency, 2); }
  }
  return DIGITS.get(currency);
}
function currenciesOf(ts) {
  const all = [...ts.points, ...(ts.compare ? ts.compare.points : [])];
  const found = new Set(all.flatMap((p) => Object.keys(p.metrics.revenue_minor || {})));
  if (!found.size) found.add(state.currency || "USD");
  return [...found].sort();
}
function fmtDay(ts) {
  return new Date(ts * 1000).toLocaleDateString(undefined, { month: "short", day: "numeric", timeZone: "UTC" });
}
function faded(hex) { return `${hex}66`; }

// uPlot's data: x, then one array per series, the period's then the compared period's.
function chartData(ts, currencies) {
  const pts = ts.points, cmp = ts.compare ? ts.compare.points : null;
  const x = pts.map(pointTime);
  const col = (arr, f) => pts.map((_, i) => (arr[i] ? f(arr[i].metrics) : null));
  const money = (cur) => (m) => ((m.revenue_minor || {})[cur] || 0) / 10 ** minorDigits(cur);
  const traffic = [x, ...TRAFFIC.map(([k]) => col(pts, (m) => m[k]))];
  const revenue = [x, ...currencies.map((c) => col(pts, money(c))), col(pts, (m) => m.conversion_rate)];
  if (cmp) {
    traffic.push(...TRAFFIC.map(([k]) => col(cmp, (m) => m[k])));
    revenue.push(...currencies.map((c) => col(cmp, money(c))), col(cmp, (m) => m.conversion_rate));
  }
  return [traffic, revenue];
}

function line(label, color, scale, dashed) {
  return { label, scale, stroke: dashed ? faded(color) : color, width: 2, dash: dashed ? [5, 4] : undefined,
           spanGaps: false, points: { size: 5, fill: dashed ? faded(color) : color } };
}

function xAxis() {
  return { stroke: "#4a5163", grid: { stroke: "#eef0f5" }, ticks: { stroke: "#d5d9e3" },
           values: (u, splits) => splits.map(fmtDay) };
}

function trafficOptions(width, compared) {
  const series = [{}, ...TRAFFIC.map(([, n, c]) => line(n, c, "y", false))];
  if (compared) series.push(...TRAFFIC.map(([, n, c]) => line(`${n} (compared)`, c, "y", true)));
  return {
    width, height: 220, series, legend: { show: false },
    scales: { x: { time: true }, y: { range: (u, lo, hi) => [0, Math.max(1, hi * 1.05)] } },
    // same left and right widths as the revenue chart, so a day sits at one x in both
    axes: [xAxis(), { stroke: "#4a5163", grid: { stroke: "#eef0f5" }, ticks: { stroke: "#d5d9e3" }, size: 80,
                      values: (u, splits) => splits.map((v) => Number(v).toLocaleString()) },
           { scale: "y", side: 1, size: 60, grid: { show: false }, ticks: { show: false }, values: (u, splits) => splits.map(() => "") }],
  };
}

function revenueOptions(width, compared, currencies) {
  const money = currencies.map((c, i) => line(`Revenue ${c}`, CURRENCY_COLORS[i % CURRENCY_COLORS.length], "money", false));
  const series = [{}, ...money, line("Conversion rate", RATE_COLOR, "rate", false)];
  if (compared) {
    series.push(...currencies.map((c, i) => line(`Revenue ${c} (compared)`, CURRENCY_COLORS[i % CURRENCY_COLORS.length], "money", true)));
    series.push(line("Conversion rate (compared)", RATE_COLOR, "rate", true));
  }
  const one = currencies.length === 1 ? currencies[0] : null;
  const moneyTick = (v) => (one ? fmtMoneyOne(Math.round(v * 10 ** minorDigits(one)), one) : Number(v).toLocaleString());
  return {
    width, height: 200, series, legend: { show: false },
    scales: { x: { time: true }, money: { range: (u, lo, hi) => [0, Math.max(1, hi * 1.05)] },
              rate: { range: (u, lo, hi) => [0, Math.max(0.01, hi * 1.1)] } },
    axes: [xAxis(),
      { scale: "money", stroke: "#4a5163", grid: { stroke: "#eef0f5" }, ticks: { stroke: "#d5d9e3" }, size: 80,
        values: (u, splits) => splits.map(moneyTick) },
      { scale: "rate", side: 1, stroke: RATE_COLOR, grid: { show: false }, ticks: { stroke: "#d5d9e3" }, size: 60,
        values: (u, splits) => splits.map((v) => `${(v * 100).toFixed(1)} %`) }],
  };
}

function legendHtml(compared, currencies) {
  const swatch = (c, n) => `<span><i style="background:${c}"></i>${esc(n)}</span>`;
  return TRAFFIC.map(([, n, c]) => swatch(c, n)).join("")
    + currencies.map((cur, i) => swatch(CURRENCY_COLORS[i % CURRENCY_COLORS.length], `Revenue ${cur}`)).join("")
    + swatch(RATE_COLOR, "Conversion rate (right axis)") + (compared ? "<span>dashed: compared period</span>" : "");
}

// The values of point ``i`` in the period and the compared period, as the table below writes them.
function valuesRow(pt, testid, label) {
  if (!pt) return `<tr data-testid="${testid}"><th scope="row">${esc(label)}</th><td colspan="5">no data</td></tr>`;
  const m = pt.metrics;
  const revenue = Object.entries(m.revenue_minor || {}).filter(([, v]) => v !== 0);
  const money = revenue.length ? revenue.map(([c, v]) => fmtMoneyOne(v, c)).join(" · ") : fmtMoneyOne(0, state.currency || "USD");
  const cells = [["banner_views", fmtCount(m.banner_views)], ["banner_clicks", fmtCount(m.banner_clicks)],
    ["conversions", fmtCount(m.conversions)], ["conversion_rate", fmtRate(m.conversion_rate)], ["revenue_minor", money]];
  return `<tr data-testid="${testid}"><th scope="row" data-metric="date">${esc(pointLabel(pt))}${label ? ` ${esc(label)}` : ""}</th>`
    + cells.map(([k, v]) => `<td data-metric="${k}">${esc(v)}</td>`).join("") + "</tr>";
}

function showValues(idx) {
  const box = $("chart-values"), ts = chartState.ts;
  if (!ts || idx == null || !ts.points[idx]) {
    box.innerHTML = `<p class="hint">Hover over the chart, or focus it and press ← →, for the exact values of a ${$("interval").value === "week" ? "week" : "day"}.</p>`;
    box.dataset.idx = ""; return;
  }
  chartState.idx = idx;
  const cmp = ts.compare ? ts.compare.points[idx] : undefined;
  box.innerHTML = `<table><thead><tr><th scope="col">${$("interval").value === "week" ? "Week" : "Day"}</th><th scope="col">Views</th>`
    + `<th scope="col">Clicks</th><th scope="col">Conversions</th><th scope="col">Conv. rate</th><th scope="col">Revenue</th></tr></thead><tbody>`
    + valuesRow(ts.points[idx], "values-period", "")
    + (ts.compare ? valuesRow(cmp, "values-compared", "(compared)") : "") + "</tbody></table>";
  box.dataset.idx = String(idx);
}

function destroyCharts() { chartState.plots.forEach((u) => u.destroy()); chartState.plots = []; }

function drawCharts(ts) {
  chartState.ts = ts;
  const currencies = currenciesOf(ts), compared = !!ts.compare;
  const shape = JSON.stringify([currencies, compared, $("interval").value]);
  const [traffic, revenue] = chartData(ts, currencies);
  const width = Math.max(240, $("chart-plots").clientWidth);
  if (chartState.first !== traffic[0][0]) chartState.idx = null; // another period: no old point
  chartState.first = traffic[0][0];
  if (chartState.shape !== shape || !chartState.plots.length) {
    destroyCharts();
    chartState.shape = shape;
    const sync = { cursor: { y: false, sync: { key: "upsell-ts" } }, hooks: { setCursor: [(u) => { if (u.cursor.idx != null) showValues(u.cursor.idx); }] } };
    const make = (opts, data, el, label) => {
      const u = new uPlot({ ...opts, ...sync }, data, el);
      u.root.setAttribute("role", "img"); u.root.setAttribute("aria-label", label);
      return u;
    };
    chartState.plots = [
      make(trafficOptions(width, compared), traffic, $("chart-traffic"), "Views, clicks and conversions over time"),
      make(revenueOptions(width, compared, currencies), revenue, $("chart-revenue"), "Revenue and conversion rate over time"),
    ];
    $("chart-legend").innerHTML = legendHtml(compared, currencies);
  } else {
    chartState.plots[0].setData(traffic); chartState.plots[1].setData(revenue);
  }
  // the readout follows live updates of the point it shows
  showValues(chartState.idx != null && chartState.idx < ts.points.length ? chartState.idx : null);
}

// Arrow keys on the focused charts move the shared cursor from point to point.
function chartKey(e) {
  const u = chartState.plots[0], n = chartState.ts ? chartState.ts.points.length : 0;
  if (!u || !n) return;
  const moves = { ArrowLeft: -1, ArrowRight: 1, Home: -n, End: n };
  if (!(e.key in moves)) return;
  e.preventDefault();
  const now = chartState.idx == null ? (moves[e.key] > 0 ? -1 : n) : chartState.idx;
  const idx = Math.min(n - 1, Math.max(0, now + moves[e.key]));
  u.setCursor({ left: u.valToPos(u.data[0][idx], "x"), top: u.over.clientHeight / 2 });
  showValues(idx);
}

function wireCharts() {
  $("chart-plots").addEventListener("keydown", chartKey);
  new ResizeObserver(() => {
    const width = Math.max(240, $("chart-plots").clientWidth);
    chartState.plots.forEach((u) => { if (u.width !== width) u.setSize({ width, height: u.height }); });
  }).observe($("chart-plots"));
}
