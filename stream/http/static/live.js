// Live updates: GET /v1/shops/{id}/live read with fetch (so the bearer header goes along; an
// EventSource cannot send it). Falls back to polling when the stream cannot be opened or drops,
// and tries the stream again after RETRY_MS. Loaded before app.js.
"use strict";

const liveState = { mode: "polling", controller: null, timer: null, key: "" };
const LIVE_RETRY_MS = 10000;

function liveKey() {
  const p = params();
  if (state.tab === "groups") p.groups = "1";
  return `${$("shop").value}?${new URLSearchParams(p)}`;
}

function stopLive() {
  if (liveState.controller) liveState.controller.abort();
  liveState.controller = null; liveState.mode = "polling"; liveState.key = "";
  clearTimeout(liveState.timer);
}

function onLiveEvent(chunk) {
  let name = "message";
  for (const line of chunk.split("\n")) if (line.startsWith("event: ")) name = line.slice(7);
  if (!chunk.includes("\ndata: ") && !chunk.startsWith("data: ")) return; // heartbeat or retry
  if ((name === "overview" && state.tab === "overview") || (name === "groups" && state.tab === "groups")) refresh();
  else state.updatedAt = Date.now();
}

async function connectLive() {
  const shop = $("shop").value;
  if (!shop || !state.token || state.tab === "conversions") { stopLive(); return; }
  const key = liveKey();
  if (liveState.controller && liveState.key === key) return;
  stopLive();
  const ctrl = new AbortController();
  liveState.controller = ctrl; liveState.key = key;
  try {
    const resp = await fetch(`/v1/shops/${encodeURIComponent(shop)}/live?${key.split("?")[1]}`, {
      headers: { Authorization: `Bearer ${state.token}`, Accept: "text/event-stream" }, signal: ctrl.signal });
    if (!resp.ok || !resp.body) throw new Error(`live stream answered ${resp.status}`);
    liveState.mode = "stream";
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) { onLiveEvent(buf.slice(0, i)); buf = buf.slice(i + 2); }
    }
  } catch (err) { if (ctrl.signal.aborted) return; }
  if (liveState.controller !== ctrl) return;
  liveState.controller = null; liveState.mode = "polling"; liveState.key = "";
  liveState.timer = setTimeout(connectLive, LIVE_RETRY_MS);
}
