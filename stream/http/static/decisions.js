// The Groups tab's decision per group: verdict line, a bar per variation with its always-valid
// 95 % interval, exposed subscribers and days running, and the warnings (contract §4.1). Loaded
// before app.js; uses its helpers at call time.
"use strict";

function fmtP(p) { return p == null ? "–" : p < 0.001 ? "< 0.001" : p.toFixed(3); }
function pClause(p) { return p != null && p < 0.001 ? "p < 0.001" : `p = ${fmtP(p)}`; }
function fmtCount(n) { return n == null ? "–" : Number(n).toLocaleString(); }

function verdictText(g) {
  const v = g.verdict;
  if (!v) return "no variation has exposed subscribers yet";
  const control = g.control_variation_id;
  if (v.winner) {
    const pct = Math.round(Math.abs(v.lift) * 100);
    return `${v.winner} converts ${pct} % better than ${control} (${pClause(v.p_value_adjusted)}, valid however often you look)`;
  }
  if (g.variations.length < 2) return "no clear winner yet: only one variation";
  const mde = `${Math.round(v.mde * 100)} %`;
  if (v.subscribers_needed == null) return `no clear winner yet: too few conversions to say how long a ${mde} lift takes to show`;
  if (v.days_needed === 0) return `no clear winner: enough subscribers to find a ${mde} lift, and none shows`;
  if (v.days_needed == null) return `no clear winner yet: ${fmtCount(v.subscribers_needed)} subscribers per variation needed to find a ${mde} lift, not reachable at this traffic`;
  return `no clear winner yet: about ${fmtCount(v.days_needed)} more days at this traffic to find a ${mde} lift (${fmtCount(v.subscribers_needed)} subscribers per variation)`;
}

function intervalBars(g) {
  const top = Math.max(1e-9, ...g.variations.map((v) => (v.stats.conversion_rate_ci95 || [0, 0])[1]));
  const pct = (x) => `${Math.min(100, (x / top) * 100).toFixed(2)}%`;
  return g.variations.map((v) => {
    const s = v.stats, ci = s.conversion_rate_ci95;
    const isControl = v.variation_id === g.control_variation_id;
    const label = `${esc(v.variation_id)}${isControl && v.variation_id !== "control" ? " (control)" : ""}`;
    // A rate without an interval once threw here and blanked every card.
    const rate = s.conversion_rate == null ? "no exposed subscribers"
      : ci ? `${fmtRate(s.conversion_rate)} (${fmtRate(ci[0])} – ${fmtRate(ci[1])})` : fmtRate(s.conversion_rate);
    const value = `${rate} · ${fmtCount(s.exposed_subscribers)} subscribers`;
    const cls = s.significant ? (s.lift >= 0 ? "bar win" : "bar lose") : isControl ? "bar control" : "bar";
    const whisker = ci ? `<div class="ci" data-testid="interval" style="left:${pct(ci[0])};width:calc(${pct(ci[1])} - ${pct(ci[0])})"></div>` : "";
    return `<div class="bar-row" data-testid="interval-bar" data-variation="${esc(v.variation_id)}">
      <span class="bar-label">${label}</span>
      <div class="bar-track"><div class="${cls}" style="width:${pct(s.conversion_rate || 0)}"></div>${whisker}</div>
      <span class="bar-value">${value}</span></div>`;
  }).join("");
}

function warnings(g) {
  const v = g.verdict || {};
  const out = [];
  if (g.srm && g.srm.mismatch) out.push(`<p class="srm" data-testid="srm-warning">⚠ Sample-ratio mismatch: the subscribers are not split as intended (${g.srm.expected_split === "settings" ? "the shop's weights" : "an equal split"}; ${pClause(g.srm.p_value)}). Check the assignment before trusting this result.</p>`);
  if (v.worse && v.worse.length) out.push(`<p class="srm" data-testid="worse-warning">⚠ Significantly worse than ${esc(g.control_variation_id)}: ${v.worse.map(esc).join(", ")}.</p>`);
  if (v.guardrail && v.guardrail.length) out.push(`<p class="srm" data-testid="guardrail-warning">⚠ More downgrades than ${esc(g.control_variation_id)}: ${v.guardrail.map(esc).join(", ")}.</p>`);
  return out.join("");
}

function runLine(g) {
  const x = g.experiment;
  if (!x || !x.from) return "";
  const left = x.views_without_subscriber ? `; ${fmtCount(x.views_without_subscriber)} views without a subscriber left out` : "";
  return `<p class="hint" data-testid="run">${fmtCount(x.exposed_subscribers)} exposed subscribers, ${fmtCount(x.days_running)} days running (since ${esc(x.from)})${left}.</p>`;
}

function decisionHtml(g) {
  const significant = g.verdict && g.verdict.winner ? " significant" : "";
  return `<h3>${esc(g.group_id)}</h3>
    <p class="verdict${significant}" data-testid="verdict">${esc(verdictText(g))}</p>${warnings(g)}${runLine(g)}
    <div class="bars">${intervalBars(g)}</div>
    <p class="hint">Bars: converted per exposed subscriber over the whole experiment, lines: 95 % intervals that stay valid however often you look. "Better" needs p &lt; 0.05 after Holm's correction and ≥ 100 subscribers and ≥ 5 conversions per variation.</p>`;
}

// Group details are heavy queries by default (28 days + the previous period): fetched all at
// once, 5 groups or more met the 503 of the process's 4 heavy slots, and past a token's 2 the
// 429 of its share. Two at a time, and a 429 or 503 is retried after its Retry-After.
const DETAILS_AT_ONCE = 2;
const DETAIL_TRIES = 5;

async function detail(path, params) {
  for (let attempt = 1; ; attempt++) {
    const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== "" && v != null));
    const resp = await fetch(`${path}${query.size ? "?" + query : ""}`, {
      headers: { Authorization: `Bearer ${state.token}` } });
    const body = await resp.json().catch(() => null);
    if (resp.ok) return body;
    if (![429, 503].includes(resp.status) || attempt >= DETAIL_TRIES) throw new ApiError(resp.status, body);
    const wait = Math.min(Number(resp.headers.get("Retry-After")) || 1, 30);
    await new Promise((done) => setTimeout(done, wait * 1000));
  }
}

async function details(shop, groups, p, wanted) {
  const docs = new Array(groups.length);
  let next = 0;
  async function lane() {
    while (next < groups.length && wanted()) {
      const i = next++;
      docs[i] = await detail(`/v1/shops/${encodeURIComponent(shop)}/groups/${encodeURIComponent(groups[i].group_id)}`, p);
    }
  }
  await Promise.all(Array.from({ length: Math.min(DETAILS_AT_ONCE, groups.length) }, lane));
  return docs;
}

// A refresh that comes while the same details are still being fetched (retries take seconds)
// waits for them rather than fetching them all again beside them; another shop or period
// supersedes them (their lanes stop, their answers are not drawn).
let pending = null;

function renderDecisions(shop, groups, p) {
  const key = JSON.stringify([shop, groups.map((g) => g.group_id), p]);
  if (pending && pending.key === key) return pending.done;
  const mine = { key };
  const wanted = () => pending === mine;
  pending = mine;  // before the first lane asks wanted()
  mine.done = renderNow(shop, groups, p, wanted).finally(() => { if (wanted()) pending = null; });
  return mine.done;
}

async function renderNow(shop, groups, p, wanted) {
  const box = $("decisions");
  const docs = await details(shop, groups, p, wanted);
  if (!wanted()) return docs.filter(Boolean);
  const keep = new Set();
  for (const d of docs) {
    keep.add(d.group_id);
    let card = box.querySelector(`[data-group="${CSS.escape(d.group_id)}"]`);
    if (!card) { card = document.createElement("div"); card.className = "decision"; card.dataset.group = d.group_id; card.dataset.testid = "decision"; box.appendChild(card); }
    const html = decisionHtml(d);
    if (card.dataset.html !== html) { card.innerHTML = html; card.dataset.html = html; }
  }
  [...box.querySelectorAll(".decision")].forEach((c) => { if (!keep.has(c.dataset.group)) c.remove(); });
  return docs;
}
