/* upsell.js: banner views and clicks for upsell-stream, from the shopper's browser.
 * Plain JavaScript, no dependencies. Events are batched; while the page is shown a batch goes
 * with fetch(..., {keepalive: true}), and one the collector could not take (503, 429, or no
 * network) is sent again, the same events with the same ids, after the answer's Retry-After
 * (else 1, 2, 4 ... s), up to 5 tries. When the page is hidden or left, everything queued or
 * waiting for a retry goes with navigator.sendBeacon (text/plain, no CORS preflight). Every
 * event carries an id from crypto.randomUUID(), so a batch sent twice is counted once (the
 * collector drops ids it already accepted). At most 1,000 events wait; the oldest go first.
 *
 *   upsell.init({endpoint: "https://collect.example", key: "upk_...", shop: "my-shop"});
 *   upsell.view({group: "annual-upgrade", variation: "control", banner: "annual-20"});
 *   upsell.click({group: "annual-upgrade", variation: "control", banner: "annual-20"});
 */
(function (w) {
  "use strict";
  var MAX_BATCH = 20; // events per request (the collector takes up to 100)
  var FLUSH_MS = 2000; // a lone event waits at most this long
  var MAX_WAITING = 1000; // events queued or waiting for a retry; the oldest are dropped
  var MAX_TRIES = 5;
  var MAX_RETRY_S = 60;
  var cfg = null;
  var queue = [];
  var retrying = []; // batches {events, tries} waiting for their retry timer
  var timer = null;

  function uuid() {
    if (w.crypto && typeof w.crypto.randomUUID === "function") return w.crypto.randomUUID();
    // crypto.randomUUID exists only in secure contexts (https, localhost): same format otherwise
    var b = w.crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); });
    return h.slice(0, 4).join("") + "-" + h.slice(4, 6).join("") + "-" + h.slice(6, 8).join("") +
      "-" + h.slice(8, 10).join("") + "-" + h.slice(10).join("");
  }

  function visitor() {
    try {
      var id = w.localStorage.getItem("upsell.visitor");
      if (!id) {
        id = "anon-" + uuid();
        w.localStorage.setItem("upsell.visitor", id);
      }
      return id;
    } catch (e) {
      return "anon-" + uuid();
    }
  }

  function target() {
    return cfg.endpoint.replace(/\/+$/, "") + "/v1/collect?key=" + encodeURIComponent(cfg.key);
  }

  function body(events) {
    return JSON.stringify({ events: events, sent_at: new Date().toISOString() });
  }

  function post(batch) {
    w.fetch(target(), {
      method: "POST",
      body: body(batch.events),
      keepalive: true,
      credentials: "omit",
      headers: { "Content-Type": "text/plain" }
    }).then(function (answer) {
      if (answer.status === 429 || answer.status >= 500) retry(batch, answer.headers.get("Retry-After"));
    }, function () { retry(batch, null); });
  }

  function retry(batch, retryAfter) {
    batch.tries += 1;
    if (batch.tries >= MAX_TRIES) return; // the collector kept refusing: give these events up
    var s = parseInt(retryAfter, 10);
    var wait = isFinite(s) && s >= 0 ? s : Math.pow(2, batch.tries - 1);
    retrying.push(batch);
    setTimeout(function () {
      var i = retrying.indexOf(batch);
      if (i < 0) return; // already sent as a beacon when the page was hidden
      retrying.splice(i, 1);
      post(batch);
    }, Math.min(wait, MAX_RETRY_S) * 1000);
  }

  function beacon(events) {
    var nav = w.navigator;
    if (nav.sendBeacon && nav.sendBeacon(target(), body(events))) return;
    if (w.fetch) post({ events: events, tries: MAX_TRIES - 1 }); // the page is going: no retry
  }

  function flush() {
    if (timer) {
      clearTimeout(timer);
      timer = null;
    }
    while (queue.length) {
      var events = queue.splice(0, MAX_BATCH);
      if (w.fetch) post({ events: events, tries: 0 });
      else beacon(events);
    }
  }

  function leave() {
    if (timer) {
      clearTimeout(timer);
      timer = null;
    }
    var events = [];
    while (retrying.length) events = events.concat(retrying.shift().events);
    events = events.concat(queue.splice(0, queue.length));
    while (events.length) beacon(events.splice(0, MAX_BATCH));
  }

  function dropOldest() {
    var waiting = queue.length;
    retrying.forEach(function (b) { waiting += b.events.length; });
    if (waiting <= MAX_WAITING) return;
    if (!retrying.length) queue.shift();
    else if (retrying[0].events.length > 1) retrying[0].events.shift();
    else retrying.shift();
  }

  function track(kind, p) {
    if (!cfg) throw new Error("upsell.init({endpoint, key, shop}) first");
    p = p || {};
    var event = {
      kind: kind,
      event_id: uuid(),
      shop_id: cfg.shop,
      occurred_at: new Date().toISOString(),
      group_id: p.group,
      variation_id: p.variation
    };
    var subscriber = p.subscriber || cfg.subscriber || (kind === "banner_click" ? visitor() : null);
    if (subscriber) event.subscriber_id = subscriber;
    if (p.banner) event.banner_id = p.banner;
    queue.push(event);
    dropOldest();
    if (queue.length >= MAX_BATCH) flush();
    else if (!timer) timer = setTimeout(flush, FLUSH_MS);
    return event.event_id;
  }

  w.upsell = {
    init: function (options) {
      if (!options || !options.endpoint || !options.key || !options.shop) {
        throw new Error("upsell.init needs endpoint, key and shop");
      }
      cfg = { endpoint: options.endpoint, key: options.key, shop: options.shop,
              subscriber: options.subscriber || null };
    },
    view: function (p) { return track("banner_view", p); },
    click: function (p) { return track("banner_click", p); },
    flush: flush
  };
  w.addEventListener("pagehide", leave);
  w.document.addEventListener("visibilitychange", function () {
    if (w.document.visibilityState === "hidden") leave();
  });
})(window);
