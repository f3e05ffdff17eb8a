/* upsell.js: banner views and clicks for upsell-stream, from the shopper's browser.
 * One source: this file is the npm package (ESM, with types) and, wrapped by
 * scripts/iife.mjs, the collector's /v1/upsell.js. No dependencies.
 *
 * Consent. At init the snippet asks the collector (GET /v1/snippet-config) whether the shop's
 * key requires consent. Until it knows, and while consent is required but not given, events
 * wait in memory only: nothing is stored (no visitor id in localStorage) and nothing is sent.
 * upsell.consent(true) sends them; upsell.consent(false) drops them and the stored visitor id.
 * When Shopify's Customer Privacy API is on the page, its analyticsProcessingAllowed() counts as
 * the visitor's answer and its visitorConsentCollected event as a consent call.
 *
 * Sending. Events are batched; while the page is shown a batch goes with fetch(...,
 * {keepalive: true}), and one the collector could not take (503, 429, or no network) is sent
 * again, with the same event ids, after the answer's Retry-After (else 1, 2, 4 ... s), up to 5
 * tries. When the page is hidden or left, everything waiting goes with navigator.sendBeacon.
 * Every event has an id from crypto.randomUUID(), so a batch sent twice counts once. At most
 * 1,000 events wait; the oldest go first.
 *
 * Fields. view() and click() take group, variation and subscriber; any other field throws,
 * so a misspelt or made-up one (a "banner") is told at once instead of being dropped.
 */

export interface InitOptions {
  endpoint: string;
  key: string;
  shop: string;
  subscriber?: string;
}

export interface BannerEvent {
  group: string;
  variation: string;
  subscriber?: string;
}

export interface Upsell {
  init(options: InitOptions): void;
  /** The event id, or null when the visitor refused consent (nothing is kept). */
  view(event: BannerEvent): string | null;
  click(event: BannerEvent): string | null;
  /** The visitor's answer: true sends what waits, false drops it and the stored visitor id. */
  consent(granted: boolean): void;
  flush(): void;
}

interface Answer {
  status: number;
  ok: boolean;
  headers: { get(name: string): string | null };
  json(): Promise<unknown>;
}

/** What the snippet uses of `window` (a test hands it a fake one). */
export interface UpsellWindow {
  fetch?: (url: string, init?: Record<string, unknown>) => Promise<Answer>;
  navigator: { sendBeacon?: (url: string, body: string) => boolean };
  localStorage?: {
    getItem(k: string): string | null;
    setItem(k: string, v: string): void;
    removeItem(k: string): void;
  };
  crypto: { randomUUID?: () => string; getRandomValues(a: Uint8Array): Uint8Array };
  document: {
    visibilityState: string;
    addEventListener(type: string, listener: (e: { detail?: unknown }) => void): void;
  };
  addEventListener(type: string, listener: () => void): void;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(id: unknown): void;
  Shopify?: { customerPrivacy?: { analyticsProcessingAllowed?: () => boolean } };
}

interface Wire {
  kind: string;
  event_id: string;
  shop_id: string;
  occurred_at: string;
  group_id: string;
  variation_id: string;
  subscriber_id?: string;
}

interface Waiting {
  event: Wire;
  visitor: boolean; // a click without a subscriber: the visitor id is added when sent
}

interface Batch {
  events: Wire[];
  tries: number;
}

const MAX_BATCH = 20; // events per request (the collector takes up to 100)
const FLUSH_MS = 2000; // a lone event waits at most this long
const MAX_WAITING = 1000; // events queued or waiting for a retry; the oldest are dropped
const MAX_TRIES = 5;
const MAX_RETRY_S = 60;
const VISITOR = "upsell.visitor";
const FIELDS = ["group", "variation", "subscriber"];
const OPTIONS = ["endpoint", "key", "shop", "subscriber"];

function refuseUnknown(what: string, given: object, known: string[]): void {
  for (const name of Object.keys(given)) {
    if (known.indexOf(name) < 0) {
      throw new Error(`upsell.${what}: unknown field "${name}" (known: ${known.join(", ")})`);
    }
  }
}

export function createUpsell(w: UpsellWindow): Upsell {
  let cfg: InitOptions | null = null;
  let mode = "unknown"; // the key's consent setting: unknown, required, not_required
  let granted: boolean | null = null; // the visitor's answer, once given
  let queue: Waiting[] = [];
  let retrying: Batch[] = []; // batches waiting for their retry timer
  let timer: unknown = null;

  function uuid(): string {
    if (typeof w.crypto.randomUUID === "function") return w.crypto.randomUUID();
    // crypto.randomUUID exists only in secure contexts (https, localhost): same format otherwise
    const b = w.crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    const h = Array.prototype.map.call(b, (x: number) => (x + 256).toString(16).slice(1));
    const s = (h as string[]).join("");
    return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`;
  }

  function shopify(): boolean | null {
    const api = w.Shopify && w.Shopify.customerPrivacy;
    if (!api || typeof api.analyticsProcessingAllowed !== "function") return null;
    return !!api.analyticsProcessingAllowed();
  }

  /** true: store and send; false: refused, keep nothing; null: wait in memory. */
  function decision(): boolean | null {
    if (granted !== null) return granted;
    const s = shopify();
    if (s !== null) return s || null;
    return mode === "not_required" ? true : null;
  }

  function visitor(): string {
    try {
      let id = w.localStorage ? w.localStorage.getItem(VISITOR) : null;
      if (!id) {
        id = `anon-${uuid()}`;
        if (w.localStorage) w.localStorage.setItem(VISITOR, id);
      }
      return id;
    } catch (e) {
      return `anon-${uuid()}`;
    }
  }

  function base(): string {
    return (cfg as InitOptions).endpoint.replace(/\/+$/, "");
  }

  function target(): string {
    return `${base()}/v1/collect?key=${encodeURIComponent((cfg as InitOptions).key)}`;
  }

  function body(events: Wire[]): string {
    const consent = granted === true || shopify() === true;
    return JSON.stringify({ events, sent_at: new Date().toISOString(), consent });
  }

  function post(batch: Batch): void {
    if (!w.fetch) return;
    w.fetch(target(), {
      method: "POST",
      body: body(batch.events),
      keepalive: true,
      credentials: "omit",
      headers: { "Content-Type": "text/plain" },
    }).then(
      (answer) => {
        if (answer.status === 429 || answer.status >= 500) {
          retry(batch, answer.headers.get("Retry-After"));
        }
      },
      () => retry(batch, null),
    );
  }

  function retry(batch: Batch, retryAfter: string | null): void {
    batch.tries += 1;
    if (batch.tries >= MAX_TRIES || decision() !== true) return; // give these events up
    const s = parseInt(retryAfter || "", 10);
    const wait = isFinite(s) && s >= 0 ? s : Math.pow(2, batch.tries - 1);
    retrying.push(batch);
    w.setTimeout(
      () => {
        const i = retrying.indexOf(batch);
        if (i < 0) return; // already sent as a beacon when the page was hidden
        retrying.splice(i, 1);
        post(batch);
      },
      Math.min(wait, MAX_RETRY_S) * 1000,
    );
  }

  function beacon(events: Wire[]): void {
    const nav = w.navigator;
    if (nav.sendBeacon && nav.sendBeacon(target(), body(events))) return;
    post({ events, tries: MAX_TRIES - 1 }); // the page is going: no retry
  }

  function take(n: number): Wire[] {
    return queue.splice(0, n).map((q) => {
      if (q.visitor) q.event.subscriber_id = visitor();
      return q.event;
    });
  }

  function flush(): void {
    if (timer) {
      w.clearTimeout(timer);
      timer = null;
    }
    if (decision() !== true) return; // nothing leaves before consent
    while (queue.length) {
      const events = take(MAX_BATCH);
      if (w.fetch) post({ events, tries: 0 });
      else beacon(events);
    }
  }

  function leave(): void {
    if (timer) {
      w.clearTimeout(timer);
      timer = null;
    }
    if (!cfg || decision() !== true) return;
    let events: Wire[] = [];
    while (retrying.length) events = events.concat((retrying.shift() as Batch).events);
    events = events.concat(take(queue.length));
    while (events.length) beacon(events.splice(0, MAX_BATCH));
  }

  function dropOldest(): void {
    let waiting = queue.length;
    retrying.forEach((b) => {
      waiting += b.events.length;
    });
    if (waiting <= MAX_WAITING) return;
    if (!retrying.length) queue.shift();
    else if (retrying[0].events.length > 1) retrying[0].events.shift();
    else retrying.shift();
  }

  function schedule(): void {
    if (queue.length >= MAX_BATCH) flush();
    else if (!timer && queue.length) timer = w.setTimeout(flush, FLUSH_MS);
  }

  function track(kind: string, what: string, p: BannerEvent): string | null {
    if (!cfg) throw new Error("upsell.init({endpoint, key, shop}) first");
    refuseUnknown(what, p || {}, FIELDS);
    if (!p || !p.group || !p.variation) throw new Error(`upsell.${what} needs group, variation`);
    if (decision() === false) return null;
    const event: Wire = {
      kind,
      event_id: uuid(),
      shop_id: cfg.shop,
      occurred_at: new Date().toISOString(),
      group_id: p.group,
      variation_id: p.variation,
    };
    const subscriber = p.subscriber || cfg.subscriber;
    if (subscriber) event.subscriber_id = subscriber;
    queue.push({ event, visitor: !subscriber && kind === "banner_click" });
    dropOldest();
    schedule();
    return event.event_id;
  }

  function askCollector(): void {
    if (!w.fetch) {
      mode = "required"; // no way to ask: fail closed, consent() still opens it
      return;
    }
    const url = `${base()}/v1/snippet-config?key=${encodeURIComponent((cfg as InitOptions).key)}`;
    w.fetch(url, { credentials: "omit" })
      .then((answer) => (answer.ok ? answer.json() : null))
      .then(
        (doc) => {
          const setting = doc && (doc as { consent?: string }).consent;
          mode = setting === "not_required" ? "not_required" : "required";
          schedule();
        },
        () => {
          mode = "required"; // unreadable: fail closed
        },
      );
  }

  function consent(yes: boolean): void {
    granted = !!yes;
    if (granted) {
      flush();
      return;
    }
    queue = [];
    retrying = [];
    try {
      if (w.localStorage) w.localStorage.removeItem(VISITOR);
    } catch (e) {
      // storage blocked: nothing was stored either
    }
  }

  w.addEventListener("pagehide", leave);
  w.document.addEventListener("visibilitychange", () => {
    if (w.document.visibilityState === "hidden") leave();
  });
  w.document.addEventListener("visitorConsentCollected", (e) => {
    const detail = e && (e.detail as { analyticsAllowed?: boolean } | undefined);
    if (detail && typeof detail.analyticsAllowed === "boolean") consent(detail.analyticsAllowed);
  });

  return {
    init(options: InitOptions): void {
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
