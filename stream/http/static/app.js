// The "Upgrade Groups" dashboard: talks only to the public /v1 API, token in sessionStorage.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { token: sessionStorage.getItem("upsell.token"), shops: [], tab: "overview",
                updatedAt: null, cursor: null, currency: null, expanded: new Set() };
const REFRESH_MS = 5000;
const CARDS = [
  ["banner_views", "Banner views", "count"], ["banner_clicks", "Clicks", "count"],
  ["conversions", "Conversions", "count"], ["conversion_rate", "Conversion rate", "rate"],
  ["revenue_minor", "Revenue", "money"], ["net_mrr_minor", "Net MRR", "money"],
  ["net_arr_minor", "Net ARR", "money"], ["downgrades", "Downgrades", "count"],
  ["upgrade_rate", "Upgrade rate", "rate"], ["unique_upgraders", "Unique upgraders", "count"],
];

class ApiError extends Error { constructor(status, body) { super(body?.error?.message || status); this.status = status; this.body = body; } }

async function api(path, params = {}) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== "" && v != null));
  const resp = await fetch(`${path}${query.size ? "?" + query : ""}`, {
    headers: { Authorization: `Bearer ${state.token}` } });
  const body = await resp.json().catch(() => null);
  if (!resp.ok) throw new ApiError(resp.status, body);
  return body;
}

function fmtCount(v) { return v == null ? "–" : Number(v).toLocaleString(); }
function fmtRate(v) { return v == null ? "–" : (v * 100).toFixed(2) + " %"; }
function fmtMoney(map) {
  const entries = Object.entries(map || {}).filter(([, v]) => v !== 0);
  if (!entries.length) return fmtMoneyOne(0, state.currency || "USD");
  return entries.map(([cur, v]) => fmtMoneyOne(v, cur)).join(" · ");
}
function fmtMoneyOne(minor, currency) {
  try {
    const f = new Intl.NumberFormat(undefined, { style: "currency", currency });
    const digits = f.resolvedOptions().maximumFractionDigits;
    return f.format(minor / 10 ** digits);
  } catch { return `${minor} ${currency} (minor)`; }
}
function fmt(kind, v) { return kind === "money" ? fmtMoney(v) : kind === "rate" ? fmtRate(v) : fmtCount(v); }

function changeText(kind, change, comparing) {
  if (!comparing) return { text: "", cls: "" };
  if (change == null) return { text: "no base to compare", cls: "" };
  let value = change;
  if (kind === "money") {
    const vals = Object.values(change).filter((x) => x != null);
    if (!vals.length) return { text: "no base", cls: "" };
    value = vals[0];
  }
  if (value == null) return { text: "no base", cls: "" };
  const pct = (value * 100).toFixed(1);
  return { text: `${value >= 0 ? "▲" : "▼"} ${pct} % vs compared`, cls: value >= 0 ? "up" : "down" };
}

// YYYY-MM-DD in the shop's timezone, ``days`` before today there.
function shopDate(days = 0) {
  const tz = (state.shops.find((s) => s.shop_id === $("shop").value) || {}).timezone || "UTC";
  const today = new Intl.DateTimeFormat("en-CA", { timeZone: tz }).format(new Date());
  const d = new Date(`${today}T12:00:00Z`); d.setUTCDate(d.getUTCDate() - days);
  return d.toISOString().slice(0, 10);
}

function params() {
  const p = { period: $("period").value };
  if (p.period === "last_28_days") { p.period = "custom"; p.from = shopDate(27); p.to = shopDate(0); }
  if (p.period === "date") p.date = $("date").value;
  if ($("period").value === "custom") { p.from = $("from").value; p.to = $("to").value; }
  const c = $("compare").value;
  if (c) { p.compare = c; if (c === "custom") { p.compare_from = $("compare_from").value; p.compare_to = $("compare_to").value; } }
  return p;
}

function showMessage(text) { const m = $("message"); m.textContent = text; m.hidden = !text; }
function toggle(name, on) { document.querySelectorAll(`[data-for="${name}"]`).forEach((el) => { el.hidden = !on; }); }

function setRow(tbody, key, cells) {
  let tr = tbody.querySelector(`tr[data-key="${CSS.escape(key)}"]`);
  if (!tr) { tr = document.createElement("tr"); tr.dataset.key = key; tbody.appendChild(tr); }
  while (tr.children.length < cells.length) tr.appendChild(document.createElement("td"));
  cells.forEach((c, i) => { if (tr.children[i].textContent !== String(c)) tr.children[i].textContent = c; });
  return tr;
}
function pruneRows(tbody, keep) { [...tbody.querySelectorAll("tr[data-key]")].forEach((tr) => { if (!keep.has(tr.dataset.key)) tr.remove(); }); }

async function renderOverview(shop) {
  const p = params();
  const [ov, ts] = await Promise.all([
    api(`/v1/shops/${encodeURIComponent(shop)}/overview`, p),
    api(`/v1/shops/${encodeURIComponent(shop)}/timeseries`, { ...p, interval: $("interval").value }),
  ]);
  const cards = $("cards");
  for (const [name, label, kind] of CARDS) {
    let card = cards.querySelector(`[data-testid="card-${name}"]`);
    if (!card) {
      card = document.createElement("div"); card.className = "card"; card.dataset.testid = `card-${name}`;
      card.innerHTML = `<div class="name"></div><div class="value" data-testid="value-${name}"></div><div class="change" data-testid="change-${name}"></div>`;
      card.querySelector(".name").textContent = label; cards.appendChild(card);
    }
    const value = fmt(kind, ov.metrics[name]);
    const v = card.querySelector(".value"); if (v.textContent !== value) v.textContent = value;
    const ch = changeText(kind, ov.compare ? ov.compare.change[name] : null, !!ov.compare);
    const c = card.querySelector(".change"); c.textContent = ch.text; c.className = `change ${ch.cls}`;
  }
  const empty = ov.metrics.banner_views === 0 && ov.metrics.conversions === 0;
  showMessage(empty ? (ov.last_event_at ? "No events in this period yet." : "No data yet for this shop: no event has been counted.") : "");
  drawCharts(ts);
  renderHeadline(shop, p).catch(() => {});
  const table = $("daily");
  table.querySelector("thead").innerHTML = "<tr><th>Period</th><th>Views</th><th>Clicks</th><th>Conversions</th><th>Conv. rate</th><th>Revenue</th><th>Net MRR</th></tr>";
  const body = table.querySelector("tbody");
  const keep = new Set();
  for (const pt of ts.points) {
    const key = pt.start; keep.add(key);
    const m = pt.metrics;
    setRow(body, key, [pt.start === pt.end ? pt.start : `${pt.start} – ${pt.end}`, fmtCount(m.banner_views), fmtCount(m.banner_clicks),
      fmtCount(m.conversions), fmtRate(m.conversion_rate), fmtMoney(m.revenue_minor), fmtMoney(m.net_mrr_minor)]);
  }
  pruneRows(body, keep);
}

// The overview's one-line answer: the first group (by conversions) with a winner, else the top group's verdict.
async function renderHeadline(shop, p) {
  const { groups } = await api(`/v1/shops/${encodeURIComponent(shop)}/groups`, p);
  let text = "";
  for (const g of groups.slice(0, 3)) {
    const d = await api(`/v1/shops/${encodeURIComponent(shop)}/groups/${encodeURIComponent(g.group_id)}`, p);
    if (!text || (d.verdict && d.verdict.winner)) text = `${d.group_id}: ${verdictText(d)}`;
    if (d.verdict && d.verdict.winner) break;
  }
  const h = $("headline");
  h.textContent = text; h.hidden = !text; h.classList.toggle("significant", /converts/.test(text));
}

// One detail row per expanded group, found by its group id (never by position), filled from one
// answer. Renders never overlap (refresh() queues them), so no two can each add a detail row.
async function renderGroups(shop) {
  const p = params();
  const body = await api(`/v1/shops/${encodeURIComponent(shop)}/groups`, p);
  const docs = await renderDecisions(shop, body.groups, p);
  const tbody = $("group-table").querySelector("tbody");
  if (!body.groups.length) { tbody.innerHTML = `<tr><td class="empty" colspan="7">No upgrade group has events in this period.</td></tr>`; return; }
  tbody.querySelectorAll("td.empty").forEach((td) => td.parentElement.remove());
  const order = [];
  for (const [i, g] of body.groups.entries()) {
    const m = g.metrics;
    const tr = setRow(tbody, g.group_id, [g.group_id, fmtCount(m.banner_views), fmtCount(m.banner_clicks), fmtCount(m.conversions),
      fmtRate(m.conversion_rate), fmtMoney(m.revenue_minor), fmtMoney(m.net_mrr_minor)]);
    groupToggle(tr, g.group_id);
    order.push(tr);
    let detail = [...tbody.querySelectorAll("tr.detail")].find((d) => d.dataset.group === g.group_id) || null;
    if (state.expanded.has(g.group_id)) {
      if (!detail) { detail = document.createElement("tr"); detail.className = "detail"; detail.dataset.group = g.group_id; detail.dataset.testid = "group-detail"; detail.innerHTML = `<td colspan="7"></td>`; }
      detail.id = `detail-${i}`; tr.querySelector("button").setAttribute("aria-controls", detail.id);
      const html = variationsHtml(docs[i]);
      if (detail.dataset.html !== html) { detail.firstChild.innerHTML = html; detail.dataset.html = html; }
      order.push(detail);
    } else if (detail) { detail.remove(); }
  }
  [...tbody.children].forEach((tr) => { if (!order.includes(tr)) tr.remove(); });
  order.forEach((tr, i) => { if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] || null); });
}

// The group's name as a button (keyboard and screen readers), the whole row clickable too.
function groupToggle(tr, groupId) {
  tr.className = "group-row"; tr.dataset.testid = "group-row";
  const td = tr.children[0];
  let btn = td.querySelector("button");
  if (!btn) { btn = document.createElement("button"); btn.type = "button"; btn.className = "link"; btn.textContent = groupId; td.textContent = ""; td.appendChild(btn); }
  btn.setAttribute("aria-expanded", String(state.expanded.has(groupId)));
  tr.onclick = () => { if (state.expanded.has(groupId)) state.expanded.delete(groupId); else state.expanded.add(groupId); refresh(); };
}

function variationsHtml(d) {
  return d.variations.map((v) => `<div data-testid="variation"><strong>${esc(v.variation_id)}</strong>: ${fmtCount(v.metrics.banner_views)} views, ${fmtCount(v.metrics.banner_clicks)} clicks, ${fmtCount(v.metrics.conversions)} conversions
        <ul>${v.transitions.map((t) => `<li data-testid="transition">${esc(t.from_plan)} → ${esc(t.to_plan)}: ${t.conversions} conversions, ${fmtMoney(t.revenue_minor)}</li>`).join("")}</ul></div>`).join("") || "No variation data.";
}

function esc(s) { return String(s ?? "").replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c])); }

async function renderConversions(shop, more = false) {
  const p = { ...params(), limit: 25 };
  if (more && state.cursor) p.cursor = state.cursor;
  const body = await api(`/v1/shops/${encodeURIComponent(shop)}/conversions`, p);
  const tbody = $("conversion-table").querySelector("tbody");
  if (!more) { tbody.innerHTML = ""; }
  if (!more && !body.items.length) tbody.innerHTML = `<tr><td class="empty" colspan="5">No conversions in this period.</td></tr>`;
  for (const c of body.items) {
    const tr = setRow(tbody, c.event_id, [c.subscriber_id, localDateTime(c), planChange(c.from, c.to),
      c.order_id ?? "–", fmtMoneyOne(c.revenue_minor, c.currency)]);
    tr.dataset.testid = "conversion-row";
  }
  state.cursor = body.next_cursor;
  $("more").hidden = !state.cursor;
}

// The shop's wall-clock date and time (the API's local_time), never the browser's.
function localDateTime(c) { const t = c.local_time || c.occurred_at; return `${t.slice(0, 10)} ${t.slice(11, 16)}`; }

// "pro → business", or with the same products on both sides their selling plans: "pro, monthly → pro, annual".
function planChange(from, to) {
  const a = from.product_ids.join(", "), b = to.product_ids.join(", ");
  if (a !== b) return `${a} → ${b}`;
  return `${a}, ${from.selling_plan_id} → ${b}, ${to.selling_plan_id}`;
}

const CSV_ROUTES = { overview: "timeseries", groups: "groups", conversions: "conversions" };
async function downloadCsv() {
  const shop = $("shop").value;
  const route = CSV_ROUTES[state.tab];
  const p = { ...params(), format: "csv" };
  if (route === "timeseries") p.interval = $("interval").value;
  const query = new URLSearchParams(Object.entries(p).filter(([, v]) => v !== "" && v != null));
  const resp = await fetch(`/v1/shops/${encodeURIComponent(shop)}/${route}?${query}`, { headers: { Authorization: `Bearer ${state.token}` } });
  if (!resp.ok) throw new ApiError(resp.status, await resp.json().catch(() => null));
  const name = (/filename="([^"]+)"/.exec(resp.headers.get("Content-Disposition") || "") || [])[1] || `${shop}-${route}.csv`;
  const a = document.createElement("a");
  a.href = URL.createObjectURL(await resp.blob()); a.download = name;
  document.body.appendChild(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

// One render at a time: a click, a live push or the poll that comes during a render asks for one
// more render after it (any number of asks make one), and every caller awaits that. Overlapping
// renders each saw "no detail row yet" across their awaits and each added one: the variations
// of an expanded group showed twice.
const rendering = { running: null, again: false };
function refresh() {
  if (rendering.running) { rendering.again = true; return rendering.running; }
  rendering.running = (async () => {
    try { do { rendering.again = false; await renderOnce(); } while (rendering.again); }
    finally { rendering.running = null; }
  })();
  return rendering.running;
}

async function renderOnce() {
  const shop = $("shop").value;
  if (!shop) return;
  state.currency = (state.shops.find((s) => s.shop_id === shop) || {}).currency;
  try {
    if (state.tab === "overview") await renderOverview(shop);
    else if (state.tab === "groups") await renderGroups(shop);
    else if (state.tab === "conversions" && !state.loadedConversions) { await renderConversions(shop); state.loadedConversions = true; }
    state.updatedAt = Date.now();
    if (state.tab !== "overview") showMessage("");
  } catch (err) { handleError(err); }
}

function handleError(err) {
  if (err.status === 401) { sessionStorage.removeItem("upsell.token"); state.token = null; start(); showMessage("That token is not valid: enter a valid API token."); }
  else if (err.status === 403) showMessage("Access denied: this token may not read that shop.");
  else if (err.status === 400) showMessage(`Check the filters: ${err.message}`);
  else showMessage(`The API did not answer (${err.message}); retrying.`);
}

function tick() {
  const live = $("live");
  if (!state.updatedAt) { live.textContent = "not connected"; live.className = "live"; return; }
  const s = Math.round((Date.now() - state.updatedAt) / 1000);
  const how = liveState.mode === "stream" ? "streaming" : `polling every ${REFRESH_MS / 1000} s`;
  live.textContent = `live · updated ${s} s ago · ${how}`; live.dataset.mode = liveState.mode;
  live.className = liveState.mode === "stream" || s < 3 * REFRESH_MS / 1000 ? "live ok" : "live";
}

function showTab(tab) {
  state.tab = tab;
  document.querySelectorAll("#tabs [role=tab]").forEach((b) => {
    const on = b.dataset.tab === tab;
    b.classList.toggle("active", on); b.setAttribute("aria-selected", String(on)); b.tabIndex = on ? 0 : -1;
  });
  document.querySelectorAll("main .tab").forEach((s) => { s.hidden = s.id !== tab; });
  state.loadedConversions = false;
  refresh();
  connectLive();
}

// The WAI-ARIA tabs pattern: ← → (wrapping), Home and End move the focus and open that tab.
function tabKey(e) {
  const tabs = [...document.querySelectorAll("#tabs [role=tab]")];
  const i = tabs.findIndex((b) => b.dataset.tab === state.tab);
  const next = { ArrowLeft: i - 1, ArrowRight: i + 1, Home: 0, End: tabs.length - 1 }[e.key];
  if (next === undefined) return;
  e.preventDefault();
  const to = tabs[(next + tabs.length) % tabs.length];
  to.focus(); showTab(to.dataset.tab);
}

// GET /v1/shops is paged (contract §4): read pages of the largest size, up to SHOP_PAGES of them.
// Returns true when more shops follow than the picker lists.
const SHOP_PAGES = 10;
async function loadShops() {
  state.shops = [];
  let cursor = null;
  for (let page = 0; page < SHOP_PAGES; page++) {
    const body = await api("/v1/shops", { limit: 1000, cursor });
    state.shops.push(...body.shops);
    cursor = body.next_cursor;
    if (!cursor) return false;
  }
  return true;
}

async function start() {
  if (!state.token) { $("login").hidden = false; $("controls").hidden = true; $("tabs").hidden = true; document.querySelectorAll("main .tab").forEach((s) => { s.hidden = true; }); return; }
  $("login").hidden = true;
  try {
    const more = await loadShops();
    if (!state.shops.length) { showMessage("This token may not read any shop (or no shop has data yet)."); return; }
    const sel = $("shop"); const current = sel.value;
    sel.innerHTML = state.shops.map((s) => `<option value="${esc(s.shop_id)}">${esc(s.shop_id)} (${esc(s.timezone)})</option>`).join("")
      + (more ? `<option disabled>… the first ${state.shops.length.toLocaleString()} shops (a token for fewer shops lists others)</option>` : "");
    if (current && state.shops.some((s) => s.shop_id === current)) sel.value = current;
    $("controls").hidden = false; $("tabs").hidden = false;
    showTab(state.tab);
  } catch (err) { handleError(err); }
}

function wire() {
  $("token-form").addEventListener("submit", (e) => { e.preventDefault(); state.token = $("token-input").value.trim(); $("token-input").value = ""; sessionStorage.setItem("upsell.token", state.token); showMessage(""); start(); });
  $("logout").addEventListener("click", () => { stopLive(); sessionStorage.removeItem("upsell.token"); state.token = null; state.updatedAt = null; start(); });
  for (const id of ["shop", "period", "date", "from", "to", "compare", "compare_from", "compare_to", "interval"]) {
    $(id).addEventListener("change", () => {
      toggle("date", $("period").value === "date"); toggle("custom", $("period").value === "custom"); toggle("compare-custom", $("compare").value === "custom");
      state.loadedConversions = false; state.expanded.clear(); refresh(); connectLive();
    });
  }
  document.querySelectorAll("#tabs [role=tab]").forEach((b) => b.addEventListener("click", () => showTab(b.dataset.tab)));
  $("tabs").addEventListener("keydown", tabKey);
  wireCharts();
  $("more").addEventListener("click", () => renderConversions($("shop").value, true).catch(handleError));
  document.querySelectorAll("[data-testid=download-csv]").forEach((b) => b.addEventListener("click", () => downloadCsv().catch(handleError)));
  setInterval(() => { if (state.token && state.tab !== "conversions" && liveState.mode !== "stream") refresh(); }, REFRESH_MS);
  setInterval(tick, 1000);
}

wire();
start();
