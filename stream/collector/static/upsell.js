/* upsell.js 0.1.0 for upsell-stream: banner views and clicks from the browser,
 * consent-aware. Built from clients/js/src/upsell.ts (npm @upsell-stream/browser) by
 * clients/js/scripts/iife.mjs: edit the source, not this file. Apache-2.0. */
(function (w) {
  "use strict";
  const MAX_BATCH = 20;
  const FLUSH_MS = 2000;
  const MAX_WAITING = 1000;
  const MAX_TRIES = 5;
  const MAX_RETRY_S = 60;
  const VISITOR = "upsell.visitor";
  const FIELDS = ["group", "variation", "subscriber"];
  const OPTIONS = ["endpoint", "key", "shop", "subscriber"];
  function refuseUnknown(what, given, known) {
    for (const name of Object.keys(given)) {
      if (known.indexOf(name) < 0) {
        throw new Error(`upsell.${what}: unknown field "${name}" (known: ${known.join(", ")})`);
      }
    }
  }
  function createUpsell(w) {
    let cfg = null;
    let mode = "unknown";
    let granted = null;
    let queue = [];
    let retrying = [];
    let timer = null;
    function uuid() {
      if (typeof w.crypto.randomUUID === "function")
        return w.crypto.randomUUID();
      const b = w.crypto.getRandomValues(new Uint8Array(16));
      b[6] = (b[6] & 15) | 64;
      b[8] = (b[8] & 63) | 128;
      const h = Array.prototype.map.call(b, (x) => (x + 256).toString(16).slice(1));
      const s = h.join("");
      return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`;
    }
    function shopify() {
      const api = w.Shopify && w.Shopify.customerPrivacy;
      if (!api || typeof api.analyticsProcessingAllowed !== "function")
        return null;
      return !!api.analyticsProcessingAllowed();
    }
    function decision() {
      if (granted !== null)
        return granted;
      const s = shopify();
      if (s !== null)
        return s || null;
      return mode === "not_required" ? true : null;
    }
    function visitor() {
      try {
        let id = w.localStorage ? w.localStorage.getItem(VISITOR) : null;
        if (!id) {
          id = `anon-${uuid()}`;
          if (w.localStorage)
            w.localStorage.setItem(VISITOR, id);
        }
        return id;
      }
      catch (e) {
        return `anon-${uuid()}`;
      }
    }
    function base() {
      return cfg.endpoint.replace(/\/+$/, "");
    }
    function target() {
      return `${base()}/v1/collect?key=${encodeURIComponent(cfg.key)}`;
    }
    function body(events) {
      const consent = granted === true || shopify() === true;
      return JSON.stringify({ events, sent_at: new Date().toISOString(), consent });
    }
    function post(batch) {
      if (!w.fetch)
        return;
      w.fetch(target(), {
        method: "POST",
        body: body(batch.events),
        keepalive: true,
        credentials: "omit",
        headers: { "Content-Type": "text/plain" },
      }).then((answer) => {
        if (answer.status === 429 || answer.status >= 500) {
          retry(batch, answer.headers.get("Retry-After"));
        }
      }, () => retry(batch, null));
    }
    function retry(batch, retryAfter) {
      batch.tries += 1;
      if (batch.tries >= MAX_TRIES || decision() !== true)
        return;
      const s = parseInt(retryAfter || "", 10);
      const wait = isFinite(s) && s >= 0 ? s : Math.pow(2, batch.tries - 1);
      retrying.push(batch);
      w.setTimeout(() => {
        const i = retrying.indexOf(batch);
        if (i < 0)
          return;
        retrying.splice(i, 1);
        post(batch);
      }, Math.min(wait, MAX_RETRY_S) * 1000);
    }
    function beacon(events) {
      const nav = w.navigator;
      if (nav.sendBeacon && nav.sendBeacon(target(), body(events)))
        return;
      post({ events, tries: MAX_TRIES - 1 });
    }
    function take(n) {
      return queue.splice(0, n).map((q) => {
        if (q.visitor)
          q.event.subscriber_id = visitor();
        return q.event;
      });
    }
    function flush() {
      if (timer) {
        w.clearTimeout(timer);
        timer = null;
      }
      if (decision() !== true)
        return;
      while (queue.length) {
        const events = take(MAX_BATCH);
        if (w.fetch)
          post({ events, tries: 0 });
        else
          beacon(events);
      }
    }
    function leave() {
      if (timer) {
        w.clearTimeout(timer);
        timer = null;
      }
      if (!cfg || decision() !== true)
        return;
      let events = [];
      while (retrying.length)
        events = events.concat(retrying.shift().events);
      events = events.concat(take(queue.length));
      while (events.length)
        beacon(events.splice(0, MAX_BATCH));
    }
    function dropOldest() {
      let waiting = queue.length;
      retrying.forEach((b) => {
        waiting += b.events.length;
      });
      if (waiting <= MAX_WAITING)
        return;
      if (!retrying.length)
        queue.shift();
      else if (retrying[0].events.length > 1)
        retrying[0].events.shift();
      else
        retrying.shift();
    }
    function schedule() {
      if (queue.length >= MAX_BATCH)
        flush();
      else if (!timer && queue.length)
        timer = w.setTimeout(flush, FLUSH_MS);
    }
    function track(kind, what, p) {
      if (!cfg)
        throw new Error("upsell.init({endpoint, key, shop}) first");
      refuseUnknown(what, p || {}, FIELDS);
      if (!p || !p.group || !p.variation)
        throw new Error(`upsell.${what} needs group, variation`);
      if (decision() === false)
        return null;
      const event = {
        kind,
        event_id: uuid(),
        shop_id: cfg.shop,
        occurred_at: new Date().toISOString(),
        group_id: p.group,
        variation_id: p.variation,
      };
      const subscriber = p.subscriber || cfg.subscriber;
      if (subscriber)
        event.subscriber_id = subscriber;
      queue.push({ event, visitor: !subscriber && kind === "banner_click" });
      dropOldest();
      schedule();
      return event.event_id;
    }
    function askCollector() {
      if (!w.fetch) {
        mode = "required";
        return;
      }
      const url = `${base()}/v1/snippet-config?key=${encodeURIComponent(cfg.key)}`;
      w.fetch(url, { credentials: "omit" })
        .then((answer) => (answer.ok ? answer.json() : null))
        .then((doc) => {
        const setting = doc && doc.consent;
        mode = setting === "not_required" ? "not_required" : "required";
        schedule();
      }, () => {
        mode = "required";
      });
    }
    function consent(yes) {
      granted = !!yes;
      if (granted) {
        flush();
        return;
      }
      queue = [];
      retrying = [];
      try {
        if (w.localStorage)
          w.localStorage.removeItem(VISITOR);
      }
      catch (e) {
      }
    }
    w.addEventListener("pagehide", leave);
    w.document.addEventListener("visibilitychange", () => {
      if (w.document.visibilityState === "hidden")
        leave();
    });
    w.document.addEventListener("visitorConsentCollected", (e) => {
      const detail = e && e.detail;
      if (detail && typeof detail.analyticsAllowed === "boolean")
        consent(detail.analyticsAllowed);
    });
    return {
      init(options) {
        if (!options || !options.endpoint || !options.key || !options.shop) {
          throw new Error("upsell.init needs endpoint, key and shop");
        }
        refuseUnknown("init", options, OPTIONS);
        cfg = {
          endpoint: options.endpoint,
          key: options.key,
          shop: options.shop,
          subscriber: options.subscriber,
        };
        askCollector();
      },
      view: (p) => track("banner_view", "view", p),
      click: (p) => track("banner_click", "click", p),
      consent,
      flush,
    };
  }
  w.upsell = createUpsell(w);
})(window);
