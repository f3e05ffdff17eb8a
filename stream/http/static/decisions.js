// The Groups tab's decision per group: verdict line, a bar per variation with its 95 % interval,
// and the sample-ratio warning (contract §4.1). Loaded before app.js; uses its helpers at call time.
"use strict";

function fmtP(p) { return p == null ? "–" : p < 0.001 ? "< 0.001" : p.toFixed(3); }
function pClause(p) { return p != null && p < 0.001 ? "p < 0.001" : `p = ${fmtP(p)}`; }

function verdictText(g) {
  const v = g.verdict;
  if (!v) return "no variation has views in this period";
  const control = g.control_variation_id;
  if (v.winner) {
    const pct = Math.round(Math.abs(v.lift) * 100);
    const how = v.lift >= 0 ? "better" : "worse";
    return `${v.winner} converts ${pct} % ${how} than ${control} (${pClause(v.p_value_adjusted)})`;
  }
  if (g.variations.length < 2) return "no clear winner yet: only one variation has views";
  if (v.more_views_needed == null) return "no clear winner yet: no difference between the variations so far";
  if (v.more_views_needed === 0) return "no clear winner yet: the difference is not significant (needs at least 5 conversions per variation)";
  return `no clear winner yet: about ${Number(v.more_views_needed).toLocaleString()} more views per variation needed at this rate`;
}

function intervalBars(g) {
  const top = Math.max(1e-9, ...g.variations.map((v) => (v.stats.conversion_rate_ci95 || [0, 0])[1]));
  const pct = (x) => `${Math.min(100, (x / top) * 100).toFixed(2)}%`;
  return g.variations.map((v) => {
    const s = v.stats, ci = s.conversion_rate_ci95;
    const isControl = v.variation_id === g.control_variation_id;
    const label = `${esc(v.variation_id)}${isControl && v.variation_id !== "control" ? " (control)" : ""}`;
    // A rate without an interval (more conversions than views in the period) once threw here
    // and blanked every card.
    const value = s.conversion_rate == null ? "no views"
      : ci ? `${fmtRate(s.conversion_rate)} (${fmtRate(ci[0])} – ${fmtRate(ci[1])})` : fmtRate(s.conversion_rate);
    const cls = s.significant ? (s.lift >= 0 ? "bar win" : "bar lose") : isControl ? "bar control" : "bar";
    const whisker = ci ? `<div class="ci" data-testid="interval" style="left:${pct(ci[0])};width:calc(${pct(ci[1])} - ${pct(ci[0])})"></div>` : "";
    return `<div class="bar-row" data-testid="interval-bar" data-variation="${esc(v.variation_id)}">
      <span class="bar-label">${label}</span>
      <div class="bar-track"><div class="${cls}" style="width:${pct(s.conversion_rate || 0)}"></div>${whisker}</div>
      <span class="bar-value">${value}</span></div>`;
  }).join("");
}

function decisionHtml(g) {
  const srm = g.srm && g.srm.mismatch
    ? `<p class="srm" data-testid="srm-warning">⚠ Sample-ratio mismatch: the views are not split as intended (${g.srm.expected_split === "settings" ? "the shop's weights" : "an equal split"}; ${pClause(g.srm.p_value)}). Check the assignment before trusting this result.</p>`
    : "";
  const worse = g.verdict && g.verdict.worse && g.verdict.worse.length
    ? `<p class="srm" data-testid="worse-warning">⚠ Significantly worse than ${esc(g.control_variation_id)}: ${g.verdict.worse.map(esc).join(", ")}.</p>`
    : "";
  const significant = g.verdict && g.verdict.winner ? " significant" : "";
  return `<h3>${esc(g.group_id)}</h3>
    <p class="verdict${significant}" data-testid="verdict">${esc(verdictText(g))}</p>${worse}${srm}
    <div class="bars">${intervalBars(g)}</div>
    <p class="hint">Bars: conversions per view, lines: 95 % interval. "Better" needs p &lt; 0.05 after Holm's correction and ≥ 100 views and ≥ 5 conversions per variation.</p>`;
}

async function renderDecisions(shop, groups, p) {
  const box = $("decisions");
  const docs = await Promise.all(groups.map((g) =>
    api(`/v1/shops/${encodeURIComponent(shop)}/groups/${encodeURIComponent(g.group_id)}`, p)));
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
