/* upsell.js: banner views and clicks for upsell-stream, from the shopper's browser.
 * Plain JavaScript, no dependencies. Events are batched and sent with navigator.sendBeacon
 * (text/plain, no CORS preflight), falling back to fetch(..., {keepalive: true}); the queue is
 * flushed when the page is hidden or left. Every event carries an id from crypto.randomUUID(),
 * so a batch sent twice is counted once (the collector drops ids it already accepted).
 *
 *   upsell.init({endpoint: "https://collect.example", key: "upk_...", shop: "my-shop"});
 *   upsell.view({group: "annual-upgrade", variation: "control", banner: "annual-20"});
 *   upsell.click({group: "annual-upgrade", variation: "control", banner: "annual-20"});
 */
(function (w) {
  "use strict";
  var MAX_BATCH = 20; // events per request (the collector takes up to 100)
  var FLUSH_MS = 2000; // a lone event waits at most this long
  var cfg = null;
  var queue = [];
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

  function send(events) {
    var body = JSON.stringify({ events: events, sent_at: new Date().toISOString() });
    var nav = w.navigator;
    if (nav.sendBeacon && nav.sendBeacon(target(), body)) return;
    if (!w.fetch) return;
    w.fetch(target(), {
      method: "POST",
      body: body,
      keepalive: true,
      credentials: "omit",
      headers: { "Content-Type": "text/plain" }
    }).catch(function () { /* the page may be gone; nothing else to do */ });
  }

  function flush() {
    if (timer) {
      clearTimeout(timer);
      timer = null;
    }
    while (queue.length) send(queue.splice(0, MAX_BATCH));
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
  w.addEventListener("pagehide", flush);
  w.document.addEventListener("visibilitychange", function () {
    if (w.document.visibilityState === "hidden") flush();
  });
})(window);
